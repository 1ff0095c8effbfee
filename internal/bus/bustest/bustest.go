// Package bustest starts a real embedded nats-server with JetStream for tests:
// a random loopback port, its store in t.TempDir(), every resource provisioned.
package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
)

// Server is a running test server.
type Server struct {
	*bus.Embedded
	Dir string
}

// StartServer starts an embedded server and provisions it; it stops with t.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	dir := tb.TempDir()
	e, err := bus.StartEmbedded(dir, "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("bustest: %v", err)
	}
	tb.Cleanup(e.Shutdown)
	c := connect(tb, e.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.Provision(ctx, c.JS, bus.DefaultResources()); err != nil {
		tb.Fatalf("bustest: %v", err)
	}
	return &Server{Embedded: e, Dir: dir}
}

// Connect opens a new connection to s, closed with t.
func (s *Server) Connect(tb testing.TB) *bus.Conn {
	tb.Helper()
	return connect(tb, s.URL())
}

// Start starts a provisioned server and returns one connection to it.
func Start(tb testing.TB) *bus.Conn {
	tb.Helper()
	return StartServer(tb).Connect(tb)
}

func connect(tb testing.TB, url string) *bus.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bus.Connect(ctx, url, tb.Name())
	if err != nil {
		tb.Fatalf("bustest: %v", err)
	}
	tb.Cleanup(func() { c.NC.Close() })
	return c
}
