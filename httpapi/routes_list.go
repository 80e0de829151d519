package httpapi

import "github.com/gorilla/mux"

// Route is one method and path template the API serves
// ("GET", "/v1/jobs/{id}").
type Route struct {
	Method string
	Path   string
}

// Routes lists every method and path template registered in routes.go, so
// that tests can hold the OpenAPI document to the router. It returns an
// error only if the router holds a route without a path template or
// methods, which routes.go never registers.
func (s *Server) Routes() ([]Route, error) {
	var out []Route
	err := s.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := route.GetMethods()
		if err != nil {
			return err
		}
		for _, m := range methods {
			out = append(out, Route{Method: m, Path: path})
		}
		return nil
	})
	return out, err
}
