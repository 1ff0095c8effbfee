package bus_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
)

// logBuffer is a slog destination tests can read while others write.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func connectLogged(t *testing.T, srv *bustest.Server) (*bus.Conn, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	creds := bus.Credentials{NKeyFile: srv.Dir + "/" + bus.NKeyFile}
	c, err := bus.Connect(ctx, srv.URL(), t.Name(), bus.WithCredentials(creds), bus.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, logs
}

// TestConnectionRidesOutARestart: the connection reports the outage (health
// past the bound, a log line, a count) and comes back by itself, with
// JetStream usable again.
func TestConnectionRidesOutARestart(t *testing.T) {
	srv := bustest.StartServer(t)
	c, logs := connectLogged(t, srv)
	if err := c.Health(time.Minute); err != nil || !c.Connected() {
		t.Fatalf("fresh connection: %v", err)
	}
	srv.Embedded.Shutdown()
	waitForCond(t, "the disconnection", func() bool { return !c.Connected() })
	if err := c.Health(time.Hour); err != nil {
		t.Errorf("health within the bound: %v", err)
	}
	waitForCond(t, "health past a 50ms bound", func() bool { return errors.Is(c.Health(50*time.Millisecond), bus.ErrDisconnected) })
	if c.Down() <= 0 || c.Disconnections() != 1 {
		t.Errorf("down %s, disconnections %d", c.Down(), c.Disconnections())
	}
	srv.Restart(t)
	waitForCond(t, "the reconnection", c.Connected)
	if err := c.Health(50 * time.Millisecond); err != nil || c.Down() != 0 {
		t.Errorf("after reconnecting: %v, down %s", err, c.Down())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := c.JS.KeyValue(ctx, bus.BucketConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "after", []byte("restart")); err != nil {
		t.Fatalf("JetStream after the restart: %v", err)
	}
	waitForCond(t, "the log lines", func() bool {
		return strings.Contains(logs.String(), "nats: disconnected") && strings.Contains(logs.String(), "nats: reconnected")
	})
}

// TestLongSubjectKeepsTheConnection: a subject far past nats-server's
// default control line (a 70 KB id that slipped past validation) fails its
// request, and the connection stays up; one past the embedded server's
// bound closes it for good, and health says so.
func TestLongSubjectKeepsTheConnection(t *testing.T) {
	srv := bustest.StartServer(t)
	c, logs := connectLogged(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := c.JS.KeyValue(ctx, bus.BucketCampaigns)
	if err != nil {
		t.Fatal(err)
	}
	long := "site." + strings.Repeat("a", 70<<10)
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	_, _ = kv.Get(short, long)
	cancelShort()
	if _, err := kv.Put(ctx, "site.after", []byte("{}")); err != nil || !c.Connected() {
		t.Fatalf("after a 70 KB subject: %v, connected %v", err, c.Connected())
	}
	if err := c.Health(time.Hour); err != nil {
		t.Fatalf("health: %v", err)
	}

	_ = c.NC.Publish("adsyn.x."+strings.Repeat("b", 2<<20), nil)
	_ = c.NC.Flush()
	waitForCond(t, "health to report the closed connection", func() bool { return errors.Is(c.Health(time.Hour), bus.ErrClosed) })
	waitForCond(t, "the log line", func() bool { return strings.Contains(logs.String(), "closed for good") })
}

// TestProvisionWaitsForTheServer: provisioning while NATS is away retries,
// logging each failure, and succeeds once it is back; a cancelled start
// stops waiting.
func TestProvisionWaitsForTheServer(t *testing.T) {
	srv := bustest.StartServer(t)
	c, _ := connectLogged(t, srv)
	srv.Embedded.Shutdown()
	waitForCond(t, "the disconnection", func() bool { return !c.Connected() })

	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() { done <- bus.ProvisionRetry(ctx, c.JS, bus.DefaultResources(), log) }()
	waitForCond(t, "a logged failure", func() bool { return strings.Contains(logs.String(), "provisioning failed; retrying") })
	select {
	case err := <-done:
		t.Fatalf("provisioning returned while NATS was away: %v", err)
	default:
	}
	srv.Restart(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("provisioning after the restart: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("provisioning did not finish once NATS was back")
	}

	srv.Embedded.Shutdown()
	waitForCond(t, "the disconnection", func() bool { return !c.Connected() })
	gone, cancelGone := context.WithCancel(context.Background())
	go func() { done <- bus.ProvisionRetry(gone, c.JS, bus.DefaultResources(), log) }()
	cancelGone()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled provisioning: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("cancelled provisioning kept waiting")
	}
}

// TestInProcessUsesNoSocketAndStillAuthenticates: an in-process connection
// never dials (its URL names a port nobody listens on), works for JetStream,
// and the server still checks who it is.
func TestInProcessUsesNoSocketAndStillAuthenticates(t *testing.T) {
	srv := bustest.StartServer(t)
	const nowhere = "nats://127.0.0.1:1"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bus.Connect(ctx, nowhere, t.Name(), bus.InProcess(srv.Embedded),
		bus.WithCredentials(bus.Credentials{NKeyFile: filepath.Join(srv.Dir, bus.NKeyFile)}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.JS.Stream(ctx, bus.StreamEvents); err != nil {
		t.Fatalf("JetStream over the in-process connection: %v", err)
	}

	other := t.TempDir()
	if _, err := bus.EnsureUsers(other); err != nil {
		t.Fatal(err)
	}
	// Over a pipe the client is still writing when the server answers -ERR
	// and both wait (the server's write deadline, 10 s): the refusal shows
	// as an attempt that never connects, not as ErrCredentials.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if s, err := bus.Connect(short, nowhere, "stranger", bus.InProcess(srv.Embedded),
		bus.WithCredentials(bus.Credentials{NKeyFile: filepath.Join(other, bus.NKeyFile)})); err == nil {
		s.Close()
		t.Fatal("an unknown nkey was let in over the in-process connection")
	}
	if _, err := bus.Connect(ctx, nowhere, "nil", bus.InProcess(nil)); err == nil {
		t.Fatal("a nil embedded server was accepted")
	}
}
