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
	s.scheduleRoutes()
	s.router.HandleFunc("/v1/kinds", s.handleKinds).Methods(http.MethodGet, http.MethodHead)
	s.router.HandleFunc("/openapi.json", s.handleOpenAPI).Methods(http.MethodGet, http.MethodHead)
	s.router.HandleFunc("/healthz", s.handleHealthz).Methods(http.MethodGet, http.MethodHead)
	s.router.HandleFunc("/readyz", s.handleReadyz).Methods(http.MethodGet, http.MethodHead)
}

// scheduleRoutes lists the endpoints of schedules, one line each.
func (s *Server) scheduleRoutes() {
	s.router.HandleFunc("/v1/schedules", s.handleCreateSchedule).Methods(http.MethodPost)
	s.router.HandleFunc("/v1/schedules", s.handleListSchedules).Methods(http.MethodGet)
	s.router.HandleFunc("/v1/schedules/{id}", s.handleGetSchedule).Methods(http.MethodGet)
	s.router.HandleFunc("/v1/schedules/{id}", s.handlePatchSchedule).Methods(http.MethodPatch)
	s.router.HandleFunc("/v1/schedules/{id}", s.handleDeleteSchedule).Methods(http.MethodDelete)
	s.router.HandleFunc("/v1/schedules/{id}/pause", s.handlePauseSchedule(false)).Methods(http.MethodPost)
	s.router.HandleFunc("/v1/schedules/{id}/unpause", s.handlePauseSchedule(true)).Methods(http.MethodPost)
	s.router.HandleFunc("/v1/schedules/{id}/trigger", s.handleTriggerSchedule).Methods(http.MethodPost)
	s.router.HandleFunc("/v1/schedules/{id}/backfill", s.handleBackfillSchedule).Methods(http.MethodPost)
}
