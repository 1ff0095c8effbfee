// Package bustest starts real nats-servers with JetStream for tests: one
// embedded server with NKey users required as in production, or a cluster of
// three with routes, each on random loopback ports with its store in
// t.TempDir(), every resource provisioned. Nodes can be stopped and started
// again on the same store to test faults.
package bustest

import (
	"context"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
)

// Server is a running test server. Dir holds its store and the user seed
// files (bus.NKeyFile, bus.ReaderNKeyFile).
type Server struct {
	*bus.Embedded
	Dir   string
	Users bus.Users
}

// StartServer starts an embedded server and provisions it; it stops with t.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	dir := tb.TempDir()
	users, err := bus.EnsureUsers(dir)
	if err != nil {
		tb.Fatalf("bustest: %v", err)
	}
	e, err := bus.StartEmbedded(dir, "127.0.0.1:0", bus.WithUsers(users))
	if err != nil {
		tb.Fatalf("bustest: %v", err)
	}
	tb.Cleanup(e.Shutdown)
	s := &Server{Embedded: e, Dir: dir, Users: users}
	c := s.Connect(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.Provision(ctx, c.JS, bus.DefaultResources()); err != nil {
		tb.Fatalf("bustest: %v", err)
	}
	return s
}

// Restart shuts the server down and starts it again on the same port and
// store, as a crash and restart would; connections reconnect by themselves.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	u, err := url.Parse(s.URL())
	if err != nil {
		tb.Fatalf("bustest: %v", err)
	}
	s.Embedded.Shutdown()
	e, err := bus.StartEmbedded(s.Dir, u.Host, bus.WithUsers(s.Users))
	if err != nil {
		tb.Fatalf("bustest: restart: %v", err)
	}
	tb.Cleanup(e.Shutdown)
	s.Embedded = e
}

// Connect opens a new connection to s as adsyn's user, closed with t.
func (s *Server) Connect(tb testing.TB) *bus.Conn {
	tb.Helper()
	return s.ConnectAs(tb, bus.Credentials{NKeyFile: filepath.Join(s.Dir, bus.NKeyFile)})
}

// ConnectAs opens a new connection to s with creds, closed with t.
func (s *Server) ConnectAs(tb testing.TB, creds bus.Credentials) *bus.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bus.Connect(ctx, s.URL(), tb.Name(), bus.WithCredentials(creds))
	if err != nil {
		tb.Fatalf("bustest: %v", err)
	}
	tb.Cleanup(func() { c.NC.Close() })
	return c
}

// Start starts a provisioned server and returns one connection to it.
func Start(tb testing.TB) *bus.Conn {
	tb.Helper()
	return StartServer(tb).Connect(tb)
}

func connect(tb testing.TB, url string, creds bus.Credentials) *bus.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bus.Connect(ctx, url, tb.Name(), bus.WithCredentials(creds))
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
