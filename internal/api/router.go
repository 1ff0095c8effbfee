package api

import (
	"net/http"
	"slices"
	"sync"
)

// Mux is where feature packages register their routes: an *http.ServeMux,
// or a Router, which also remembers them.
type Mux interface {
	Handle(pattern string, handler http.Handler)
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Router is an http.ServeMux that lists the patterns registered on it, so
// that a test can hold the OpenAPI document to the routes that exist.
type Router struct {
	*http.ServeMux
	mu       sync.Mutex
	patterns []string
}

var _ Mux = (*Router)(nil)

// NewRouter returns an empty Router.
func NewRouter() *Router { return &Router{ServeMux: http.NewServeMux()} }

// Handle registers handler for pattern, as http.ServeMux does.
func (r *Router) Handle(pattern string, handler http.Handler) {
	r.ServeMux.Handle(pattern, handler)
	r.mu.Lock()
	r.patterns = append(r.patterns, pattern)
	r.mu.Unlock()
}

// HandleFunc registers handler for pattern, as http.ServeMux does.
func (r *Router) HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request)) {
	r.Handle(pattern, http.HandlerFunc(handler))
}

// Patterns lists the registered patterns, sorted.
func (r *Router) Patterns() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.patterns)
	slices.Sort(out)
	return out
}
