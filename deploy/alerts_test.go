package deploy_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/config"
)

// TestAlertsUseExposedMetrics reads every adsyn_ series deploy/alerts.yml
// names and finds it on the /metrics of a running adsyn with every role: a
// rule on a name that is not exposed never fires. A counter may still be
// exposed without its _total suffix (the Prometheus naming rename lands
// separately). The go_ and process_ series come from client_golang's
// collectors and are not checked here.
func TestAlertsUseExposedMetrics(t *testing.T) {
	rules, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	used := slices.Compact(slices.Sorted(slices.Values(regexp.MustCompile(`\badsyn_[a-z0-9_]+`).FindAllString(string(rules), -1))))
	if len(used) < 10 {
		t.Fatalf("alerts.yml names only %d adsyn series: %v", len(used), used)
	}

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr, cfg.APIAddr, cfg.NATSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	a, err := app.New(cfg, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	res, err := http.Get("http://" + a.APIAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	exposed := map[string]bool{}
	for line := range strings.Lines(string(body)) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			exposed[f[2]] = true
		}
	}
	for _, name := range used {
		if !exposed[name] && !exposed[strings.TrimSuffix(name, "_total")] {
			t.Errorf("alerts.yml uses %s, which /metrics does not expose", name)
		}
	}
	t.Logf("checked: the %d adsyn series of alerts.yml are on /metrics: %s", len(used), strings.Join(used, " "))
}
