// Package bustest starts real nats-servers with JetStream for tests: one
// embedded server, or a cluster of three with routes, each on random loopback
// ports with its store in t.TempDir(), every resource provisioned. Nodes can
// be stopped and started again on the same store to test faults.
package bustest

import (
	"context"
	"net"
	"strconv"
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

// Restart shuts s down if it runs and starts it again on the same store and
// port, so that clients reconnect to it.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	u := s.URL()
	s.Shutdown()
	host, port, err := net.SplitHostPort(u[len("nats://"):])
	if err != nil {
		tb.Fatalf("bustest: restart: %v", err)
	}
	e, err := bus.StartEmbedded(s.Dir, net.JoinHostPort(host, port))
	if err != nil {
		tb.Fatalf("bustest: restart: %v", err)
	}
	tb.Cleanup(e.Shutdown)
	s.Embedded = e
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

// freePort returns a loopback port free at the time of the call.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("bustest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
