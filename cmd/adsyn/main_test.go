package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as adsyn itself, so the tests below run
// the real command in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("ADSYN_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func adsyn(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "ADSYN_TEST_MAIN=1")
	return cmd
}

func TestServeStopsCleanlyOnSIGINT(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := ln.Addr().String()
	ln.Close()
	cmd := adsyn(t, "serve", "--data", dir, "--http", "127.0.0.1:0", "--api", apiAddr, "--nats-listen", "127.0.0.1:0", "--log-format", "json")
	stderr, _ := cmd.StderrPipe()
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stderr)
	serving := false
	for !serving && lines.Scan() {
		var rec map[string]any
		if json.Unmarshal(lines.Bytes(), &rec) == nil && rec["msg"] == "adsyn serving" {
			serving = true
		}
	}
	if !serving {
		t.Fatal("adsyn serve never said it was serving")
	}
	go func() {
		for lines.Scan() {
		}
	}()
	res, err := http.Get("http://" + apiAddr + "/readyz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", res, err)
	}
	res.Body.Close()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("adsyn serve exited with %v after SIGINT", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("adsyn serve did not stop within 30s of SIGINT")
	}
	if !strings.Contains(stdout.String(), "admin") {
		t.Errorf("no admin key printed: %q", stdout.String())
	}
}

func TestBadFlagNamesTheFlag(t *testing.T) {
	out, err := adsyn(t, "serve", "--roles", "edge,wizard").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--roles") || !strings.Contains(string(out), "wizard") {
		t.Fatalf("got %v: %s", err, out)
	}
	out, err = adsyn(t, "nonsense").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown command") {
		t.Fatalf("got %v: %s", err, out)
	}
}

func TestConsentCommand(t *testing.T) {
	out, err := adsyn(t, "consent", "--vendor", "2", "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA").Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{`"cmpId": 880`, `"publisherCC": "DE"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

// TestAuditCommand runs `adsyn audit` on a fresh data directory: nothing
// stored, nothing found, status 0, and a summary of what it scanned.
func TestAuditCommand(t *testing.T) {
	out, err := adsyn(t, "audit", "--data", t.TempDir()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "audit: clean; scanned ADSYN_EVENTS 0") {
		t.Fatalf("audit: %v\n%s", err, out)
	}
}
