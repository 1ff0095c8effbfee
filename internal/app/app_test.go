package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/event"
)

func testConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr, cfg.APIAddr, cfg.NATSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

// start runs an App on cfg until the test ends and returns what it printed.
func start(t *testing.T, cfg config.Config) (*app.App, *strings.Builder) {
	t.Helper()
	out := &strings.Builder{}
	a, err := app.New(cfg, nil, out)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(ctx) })
	return a, out
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestServeAndStop runs the whole process: health, metrics, pixel hits, and a
// graceful stop after which every answered hit is in the stream.
func TestServeAndStop(t *testing.T) {
	cfg := testConfig(t)
	a, out := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if !strings.Contains(out.String(), "admin") || !strings.Contains(out.String(), "adsyn_") {
		t.Errorf("first start must print an admin key, printed %q", out.String())
	}
	api := "http://" + a.APIAddr()
	if code, _ := get(t, api+"/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
	if code, body := get(t, api+"/readyz"); code != 200 {
		t.Errorf("readyz %d %s", code, body)
	}
	if code, body := get(t, api+"/v1/nothing"); code != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Errorf("unknown route: %d %s", code, body)
	}
	const hits = 200
	for i := range hits {
		code, body, err := fasthttp.Get(nil, "http://"+a.EdgeAddr()+"/p.gif?site=s&seq="+string(rune('a'+i%26)))
		if err != nil || code != 200 || len(body) != 43 {
			t.Fatalf("pixel: %d %v", code, err)
		}
	}
	if code, body := get(t, "http://"+a.EdgeAddr()+"/.well-known/gpc.json"); code != 200 || !strings.Contains(body, `"gpc": true`) {
		t.Errorf("gpc.json: %d %s", code, body)
	}
	_, metrics := get(t, api+"/metrics")
	for _, want := range []string{`adsyn_events_total{stage="accepted"} `, "adsyn_nats_connected 1", "# TYPE adsyn_pixel_latency_seconds histogram"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	conn := a.Conn()
	// Stop drains the publisher; read the stream through a second connection
	// before the embedded server goes.
	if err := a.Publisher().Stop(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := bus.ReadEvents(ctx, conn.JS, 1, func(uint64, *event.Event) error { return nil })
	if err != nil || n != hits {
		t.Fatalf("stored %d events (%v), want %d", n, err, hits)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// A second start on the same data keeps the keys and prints none.
	if _, out := start(t, cfg); strings.Contains(out.String(), "adsyn_") {
		t.Error("a restart must not print new keys")
	}
}

func TestBadConfigIsRefused(t *testing.T) {
	cfg := testConfig(t)
	cfg.Roles = []string{"edge", "nonsense"}
	if _, err := app.New(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "--roles") {
		t.Fatalf("err %v", err)
	}
}
