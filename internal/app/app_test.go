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
// graceful stop by App.Stop alone, after which every answered hit and every
// event pending at Stop is in the stream.
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
	scrapeMetrics(t, api, hits)
	// Events handed to the publisher just before Stop, still unacknowledged
	// when it is called: App.Stop itself must drain them before it closes
	// the connection and the embedded server.
	published := 0
	for a.Publisher().Stats().Inflight == 0 {
		if published >= 100_000 {
			t.Fatal("no event was ever pending: the test would not show Stop's drain")
		}
		for range 100 {
			e := event.Event{ID: event.NewID(), TS: time.Now().UnixMilli(), Kind: event.KindPageview, Site: "s", Visitor: "StopOrderVisitor000001"}
			if !a.Publisher().Publish(&e) {
				t.Fatal("event dropped before Stop")
			}
			published++
		}
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if s := a.Publisher().Stats(); s.Dropped != 0 || s.Acked != s.Accepted {
		t.Errorf("after Stop: %+v, want every accepted event acknowledged", s)
	}
	// A second start on the same data keeps the keys and prints none.
	again, out := start(t, cfg)
	if strings.Contains(out.String(), "adsyn_") {
		t.Error("a restart must not print new keys")
	}
	// What Stop drained is on disk: the restarted process reads it back.
	n, err := bus.ReadEvents(ctx, again.Conn().JS, 1, func(uint64, *event.Event) error { return nil })
	if err != nil || n != hits+published {
		t.Fatalf("stored %d events (%v), want %d pixel hits + %d published just before Stop", n, err, hits, published)
	}
}

func TestBadConfigIsRefused(t *testing.T) {
	cfg := testConfig(t)
	cfg.Roles = []string{"edge", "nonsense"}
	if _, err := app.New(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "--roles") {
		t.Fatalf("err %v", err)
	}
}

// TestStopDrainsPendingEvents checks App.Stop's own order with nothing else
// to stop (edge role only), so the publisher's drain is all that stands
// between events still in their batches and a closed connection.
func TestStopDrainsPendingEvents(t *testing.T) {
	cfg := testConfig(t)
	cfg.Roles = []string{"edge"}
	a, _ := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	published := 0
	for published < 1000 || a.Publisher().Stats().Inflight == 0 {
		if published >= 100_000 {
			t.Fatal("no event was ever pending: the test would not show Stop's drain")
		}
		e := event.Event{ID: event.NewID(), TS: time.Now().UnixMilli(), Kind: event.KindPageview, Site: "s", Visitor: "StopOrderVisitor000001"}
		if !a.Publisher().Publish(&e) {
			t.Fatal("event dropped before Stop")
		}
		published++
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if s := a.Publisher().Stats(); s.Dropped != 0 || s.Acked != uint64(published) {
		t.Errorf("after Stop: %+v, want all %d published events acknowledged", s, published)
	}
	again, _ := start(t, cfg)
	n, err := bus.ReadEvents(ctx, again.Conn().JS, 1, func(uint64, *event.Event) error { return nil })
	if err != nil || n != published {
		t.Fatalf("stored %d events (%v), want the %d published just before Stop", n, err, published)
	}
}
