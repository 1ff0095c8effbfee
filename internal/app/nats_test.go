package app_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/api/apitest"
	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
)

// authed GETs url with a bearer key.
func authed(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := apitest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func until(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, d, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// searches sends a visitor's pixel searches for plumbing.
func searches(t *testing.T, edge, visitor string) {
	t.Helper()
	for range 3 {
		req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + edge + "/p.gif?site=s1&e=search&q=plumber+repair&c=home-repair")
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36")
		req.Header.Set("Cookie", "uid="+visitor)
		if err := fasthttp.DoTimeout(req, res, 5*time.Second); err != nil || res.StatusCode() != 200 {
			t.Fatalf("pixel: %v %d", err, res.StatusCode())
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(res)
	}
}

// impressions publishes n impressions through the process's own publisher,
// as /imp would.
func impressions(t *testing.T, a *app.App, n int) {
	t.Helper()
	for range n {
		e := event.Event{ID: event.NewID(), TS: time.Now().UnixMilli(), Kind: event.KindImpression,
			Site: "s1", Campaign: "c1", Creative: "cr1", Visitor: "ImpressionVisitor00001", Consent: consent.All}
		if !a.Publisher().Publish(&e) {
			t.Fatal("impression dropped")
		}
	}
}

// metric reads one unlabelled series of the process's registry.
func metric(a *app.App, name string) float64 {
	var b strings.Builder
	a.Metrics().WriteText(&b)
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// TestNATSRestartUnderAProcess runs adsyn against a NATS of its own (as
// with --nats, authenticated with --nats-nkey), restarts that server on the
// same store, and checks that the process says so and carries on: /readyz
// and /healthz answer 503 while NATS is away (healthz once past
// --nats-down-limit), and afterwards the segment builder, the stats
// aggregator and the key watch all take what is written later.
func TestNATSRestartUnderAProcess(t *testing.T) {
	srv := bustest.StartServer(t)
	cfg := testConfig(t)
	cfg.NATSURLs = srv.URL()
	cfg.NATSNKey = filepath.Join(srv.Dir, bus.NKeyFile)
	cfg.NATSDownLimit = time.Second
	a, out := start(t, cfg)
	admin := ""
	for _, f := range strings.Fields(out.String()) {
		if strings.HasPrefix(f, "adsyn_") {
			admin = f
		}
	}
	api := "http://" + a.APIAddr()
	segmentOf := func(visitor string) func() (bool, string) {
		return func() (bool, string) {
			code, body := authed(t, api+"/v1/visitors/"+visitor+"/segments", admin)
			return code == 200 && strings.Contains(body, "plumb"), strconv.Itoa(code) + " " + body
		}
	}
	searches(t, a.EdgeAddr(), "BeforeRestartVisitor01")
	until(t, 20*time.Second, "a segment before the restart", segmentOf("BeforeRestartVisitor01"))
	impressions(t, a, 3)
	until(t, 20*time.Second, "stats before the restart", func() (bool, string) {
		return metric(a, "adsyn_stats_events_total") >= 3, "stats events " + strconv.FormatFloat(metric(a, "adsyn_stats_events_total"), 'f', -1, 64)
	})
	counted := metric(a, "adsyn_stats_events_total")

	srv.Embedded.Shutdown()
	until(t, 20*time.Second, "readyz 503", func() (bool, string) {
		code, body := get(t, api+"/readyz")
		return code == 503 && strings.Contains(body, "nats_disconnected"), body
	})
	if metric(a, "adsyn_nats_connected") != 0 {
		t.Error("adsyn_nats_connected is not 0 while NATS is away")
	}
	until(t, 20*time.Second, "healthz 503 past the down limit", func() (bool, string) {
		code, body := get(t, api+"/healthz")
		return code == 503, body
	})
	if code, _, err := fasthttp.Get(nil, "http://"+a.EdgeAddr()+"/healthz"); err != nil || code != 503 {
		t.Errorf("edge healthz while NATS is away: %d %v", code, err)
	}

	srv.Restart(t)
	until(t, 30*time.Second, "readyz and healthz back", func() (bool, string) {
		rc, rb := get(t, api+"/readyz")
		hc, hb := get(t, api+"/healthz")
		return rc == 200 && hc == 200, rb + hb
	})
	if metric(a, "adsyn_nats_connected") != 1 || metric(a, "adsyn_nats_disconnections_total") != 1 {
		t.Errorf("connected %v, disconnections %v", metric(a, "adsyn_nats_connected"), metric(a, "adsyn_nats_disconnections_total"))
	}

	searches(t, a.EdgeAddr(), "AfterRestartVisitor001")
	until(t, 30*time.Second, "a segment after the restart", segmentOf("AfterRestartVisitor001"))
	impressions(t, a, 3)
	until(t, 30*time.Second, "stats after the restart", func() (bool, string) {
		n := metric(a, "adsyn_stats_events_total")
		return n >= counted+3, "stats events " + strconv.FormatFloat(n, 'f', -1, 64)
	})

	// A key made by another process reaches this one through its watch.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	other, err := auth.NewKeys(ctx, srv.Connect(t).JS, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := other.Create(ctx, auth.Admin, "", "made elsewhere after the restart")
	if err != nil {
		t.Fatal(err)
	}
	until(t, 20*time.Second, "the new key accepted", func() (bool, string) {
		code, body := authed(t, api+"/v1/keys", key)
		return code == 200, body
	})
}
