package app_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildAdsyn builds the adsyn binary into a temporary directory in the
// background; the channel gives its path, or "" after reporting the error.
func buildAdsyn(t *testing.T) <-chan string {
	t.Helper()
	out := make(chan string, 1)
	bin := filepath.Join(t.TempDir(), "adsyn")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	go func() {
		began := time.Now()
		b, err := exec.Command(goTool, "build", "-o", bin, "github.com/adsyn/adsyn/cmd/adsyn").CombinedOutput()
		if err != nil {
			t.Errorf("go build adsyn: %v\n%s", err, b)
			out <- ""
			return
		}
		t.Logf("built adsyn in %s", time.Since(began).Round(time.Millisecond))
		out <- bin
	}()
	return out
}

// proc is an `adsyn serve` subprocess of the cluster.
type proc struct {
	log  *testing.T // the test that outlives the process: subtests end before it
	role string
	cmd  *exec.Cmd
	args []string
	env  []string
	bin  string
	logs chan struct{} // closed when its log is read to the end
}

// startProc runs `adsyn serve --roles role` against the cluster, with the
// cluster's credentials (the password from the environment), until the test
// ends.
func (c *cluster) startProc(t *testing.T, bin, role string) *proc {
	t.Helper()
	creds := c.nats.Credentials()
	p := &proc{log: t, role: role, bin: bin,
		args: []string{"serve", "--roles", role, "--nats", c.nats.URLs(), "--nats-user", creds.User, "--replicas", "3",
			"--data", t.TempDir(), "--http", "127.0.0.1:0", "--api", "127.0.0.1:0", "--profile-keys", c.ring,
			"--api-url", publicAPI, "--allow-private-partners", "--log-format", "json", "--takeover", takeover.String()},
		env: append(os.Environ(), "ADSYN_NATS_PASSWORD="+creds.Password),
	}
	p.start(t)
	t.Cleanup(func() { p.kill(t) })
	return p
}

// start starts the process and waits until it says it serves.
func (p *proc) start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Env = p.env
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan struct{})
	pid := p.cmd.Process.Pid
	p.logs = make(chan struct{})
	go func() {
		defer close(p.logs)
		lines := bufio.NewScanner(stderr)
		said := false
		for lines.Scan() {
			var rec map[string]any
			if json.Unmarshal(lines.Bytes(), &rec) != nil {
				p.log.Logf("%s[%d]: %s", p.role, pid, lines.Text())
				continue
			}
			if !said && rec["msg"] == "adsyn serving" {
				said = true
				close(serving)
			}
			if lvl, _ := rec["level"].(string); lvl == "WARN" || lvl == "ERROR" {
				p.log.Logf("%s[%d]: %s", p.role, pid, strings.TrimSpace(lines.Text()))
			}
		}
	}()
	select {
	case <-serving:
	case <-p.logs:
		t.Fatalf("adsyn serve --roles %s ended before serving: %v", p.role, p.cmd.Wait())
	case <-time.After(3 * time.Minute): // start-up waits for the cluster, however slow
		t.Fatalf("adsyn serve --roles %s did not serve within 3 minutes", p.role)
	}
}

// kill sends SIGKILL and reaps the process; it does nothing when the
// process is not running.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if p.cmd == nil {
		return
	}
	pid := p.cmd.Process.Pid
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Logf("kill %d: %v", pid, err)
	}
	<-p.logs
	err := p.cmd.Wait()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("adsyn serve --roles %s (pid %s) ended with %v, not by SIGKILL", p.role, strconv.Itoa(pid), err)
	}
	p.cmd = nil
}
