package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestEventsUsesTheDataDirectoryCredentials: a running serve's NATS refuses
// a client without credentials; adsyn events, given the same --data, reads
// the captured events with the read-only user.
func TestEventsUsesTheDataDirectoryCredentials(t *testing.T) {
	dir := t.TempDir()
	edge, natsAddr := freePort(t), freePort(t)
	cmd := adsyn(t, "serve", "--data", dir, "--http", edge, "--api", "127.0.0.1:0", "--nats-listen", natsAddr, "--log-format", "json")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stderr)
	serving := false
	for !serving && lines.Scan() {
		var rec map[string]any
		serving = json.Unmarshal(lines.Bytes(), &rec) == nil && rec["msg"] == "adsyn serving"
	}
	if !serving {
		t.Fatal("adsyn serve never said it was serving")
	}
	go func() {
		for lines.Scan() {
		}
	}()

	if nc, err := nats.Connect("nats://"+natsAddr, nats.NoReconnect()); !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("a client without credentials: %v, want an authorization error", err)
	}

	req, _ := http.NewRequest("GET", "http://"+edge+"/p.gif?site=events-test", nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36") // not a bot
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("pixel: %v %v", res, err)
	}
	res.Body.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := adsyn(t, "events", "--data", dir, "--nats-listen", natsAddr, "--last", "5").CombinedOutput()
		if err == nil && strings.Contains(string(out), `"site":"events-test"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("adsyn events: %v: %s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}

	out, err := adsyn(t, "events", "--data", t.TempDir(), "--nats-listen", natsAddr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no NATS credentials") {
		t.Fatalf("events without credentials: %v: %s", err, out)
	}
}
