package httpapi

import "net/http"

// routes lists every endpoint of the contract, one line each.
func (s *Server) routes() {
	s.router.HandleFunc("/v1/jobs", s.handleSubmit).Methods(http.MethodPost)
	s.router.HandleFunc("/v1/jobs", s.handleList).Methods(http.MethodGet, http.MethodHead)
	s.router.HandleFunc("/v1/jobs/{id}", s.handleGet).Methods(http.MethodGet, http.MethodHead)
	s.router.HandleFunc("/v1/jobs/{id}", s.handleCancel).Methods(http.MethodDelete)
	s.router.HandleFunc("/v1/jobs/{id}/result", s.handleResult).Methods(http.MethodGet, http.MethodHead)
	s.router.HandleFunc("/v1/jobs/{id}/events", s.handleEvents).Methods(http.MethodGet)
	s.router.HandleFunc("/v1/jobs/{id}/rerun", s.handleRerun).Methods(http.MethodPost)
	s.router.HandleFunc("/v1/jobs/{id}/inputs/{name}", s.handleInput).Methods(http.MethodPost)
	s.router.HandleFunc("/v1/operations/{id}", s.handleOperation).Methods(http.MethodGet)
	s.router.HandleFunc("/v1/kinds", s.handleKinds).Methods(http.MethodGet, http.MethodHead)
	s.router.HandleFunc("/openapi.json", s.handleOpenAPI).Methods(http.MethodGet, http.MethodHead)
	if s.cfg.Metrics != nil {
		s.router.Handle("/metrics", s.cfg.Metrics).Methods(http.MethodGet)
	}
	s.router.HandleFunc("/healthz", s.handleHealthz).Methods(http.MethodGet, http.MethodHead)
	s.router.HandleFunc("/readyz", s.handleReadyz).Methods(http.MethodGet, http.MethodHead)
}
