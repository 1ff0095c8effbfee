package browsertest

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Browser is a running headless Chromium, stopped when the test ends.
type Browser struct {
	port string
	log  string // chromium's stderr
}

// path finds /usr/bin/chromium, else chromium on PATH, else fails tb.
func path(tb testing.TB) string {
	tb.Helper()
	const bin = "/usr/bin/chromium"
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	tb.Fatal("chromium is not installed: run `apt-get install chromium` (this test needs a headless browser)")
	return ""
}

// Start launches headless Chromium with a fresh profile; extra flags (for
// example --window-size) follow the defaults.
func Start(tb testing.TB, extra ...string) *Browser {
	tb.Helper()
	bin := path(tb)
	dir := tb.TempDir()
	profile := filepath.Join(dir, "profile")
	b := &Browser{log: filepath.Join(dir, "chromium.log")}
	stderr, err := os.Create(b.log)
	if err != nil {
		tb.Fatal(err)
	}
	defer stderr.Close()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile, "--remote-debugging-port=0"}, extra...)
	cmd := exec.Command(bin, append(args, "about:blank")...)
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // its whole process group
		_ = cmd.Wait()
	})
	b.poll(tb, "chromium's DevTools port", func() bool {
		s, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if err == nil {
			b.port, _, _ = strings.Cut(string(s), "\n")
			b.port = strings.TrimSpace(b.port)
		}
		return b.port != ""
	})
	return b
}

// poll checks cond until it holds, failing tb after 30s.
func (b *Browser) poll(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(b.log)
			tb.Fatalf("timed out waiting for %s; chromium says:\n%s", what, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Page attaches to the browser's first page target.
func (b *Browser) Page(tb testing.TB) *Page {
	tb.Helper()
	var ws string
	b.poll(tb, "a page target", func() bool {
		res, err := http.Get("http://127.0.0.1:" + b.port + "/json/list")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var targets []struct {
			Type string `json:"type"`
			WS   string `json:"webSocketDebuggerUrl"`
		}
		_ = json.NewDecoder(res.Body).Decode(&targets)
		for _, tg := range targets {
			if tg.Type == "page" && tg.WS != "" {
				ws = tg.WS
				return true
			}
		}
		return false
	})
	c, err := dial(ws)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.c.Close() })
	return &Page{ws: c}
}
