// Package deploy_test is the smoke test of a deployment built from deploy/:
// three nats-server nodes started with deploy/nats/nats-server.conf, an
// edge,api process and a segments,stats,syndication process of adsyn.
// .ci/run starts them and runs it; without them it has nothing to test.
package deploy_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/event"
)

// The deployment under test, as .ci/run describes it.
type deployment struct {
	edge, api   string // base URLs
	workersAPI  string // the worker process's API address (its /metrics, /readyz)
	nats        string // client URLs of the three nodes
	readerNKey  string // the read-only user's seed file
	adminKey    string // the API key the api process printed at first start
	demoSite    string
	demoSlot    string
	pollTimeout time.Duration
}

func fromEnv(t *testing.T) deployment {
	d := deployment{
		edge: os.Getenv("ADSYN_SMOKE_EDGE"), api: os.Getenv("ADSYN_SMOKE_API"), workersAPI: os.Getenv("ADSYN_SMOKE_WORKERS_API"),
		nats: os.Getenv("ADSYN_SMOKE_NATS"), readerNKey: os.Getenv("ADSYN_SMOKE_READER_NKEY"),
		adminKey: os.Getenv("ADSYN_SMOKE_ADMIN_KEY"),
		demoSite: "demo", demoSlot: "top", pollTimeout: 20 * time.Second,
	}
	if d.edge == "" {
		t.Skip("ADSYN_SMOKE_EDGE is not set: .ci/run starts the three-node cluster of deploy/ and adsyn, then runs this test")
	}
	for name, v := range map[string]string{"ADSYN_SMOKE_API": d.api, "ADSYN_SMOKE_WORKERS_API": d.workersAPI, "ADSYN_SMOKE_NATS": d.nats,
		"ADSYN_SMOKE_READER_NKEY": d.readerNKey, "ADSYN_SMOKE_ADMIN_KEY": d.adminKey} {
		if v == "" {
			t.Fatalf("%s is not set (ADSYN_SMOKE_EDGE is): the smoke test needs the whole deployment", name)
		}
	}
	return d
}

// TestSmoke checks the deployment end to end: readiness, then a pixel hit
// and an ad request by a fresh visitor, each stored in ADSYN_EVENTS on the
// cluster and counted: by the edge's publisher, by the segments builder in
// the worker process (the visitor's record) and by the stats aggregator
// there (the site's impressions).
func TestSmoke(t *testing.T) {
	d := fromEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	status, body := d.poll(t, d.api+"/readyz", "", func(code int, _ string) bool { return code == 200 })
	t.Logf("checked: API /readyz answers %d %s", status, strings.TrimSpace(body))
	status, body = d.poll(t, d.workersAPI+"/readyz", "", func(code int, _ string) bool { return code == 200 })
	t.Logf("checked: the workers' /readyz answers %d %s", status, strings.TrimSpace(body))
	if code, body := get(t, d.edge+"/healthz", ""); code != 200 {
		t.Fatalf("edge /healthz: %d %s", code, body)
	}
	t.Logf("checked: edge /healthz answers 200")

	conn, err := bus.Connect(ctx, d.nats, "adsyn smoke", bus.WithCredentials(bus.Credentials{NKeyFile: d.readerNKey}))
	if err != nil {
		t.Fatalf("the reader user cannot log in to the cluster: %v", err)
	}
	defer conn.Close()
	stream, err := conn.JS.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.Config.Replicas; n != 3 {
		t.Fatalf("%s has %d replicas; the deployment runs --replicas 3", bus.StreamEvents, n)
	}
	if info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("%s is not replicated on three nodes: %+v", bus.StreamEvents, info.Cluster)
	}
	t.Logf("checked: %s has 3 replicas, leader %s", bus.StreamEvents, info.Cluster.Leader)
	first := info.State.LastSeq
	acked := d.acknowledged(t)
	impressions := d.siteImpressions(t)

	visitor := newVisitorID(t)
	cookie := "uid=" + visitor
	code, _ := get(t, d.edge+"/p.gif?site="+d.demoSite+"&u=https%3A%2F%2Fsmoke.example%2Fplumbers&c=home-repair", cookie)
	if code != 200 {
		t.Fatalf("pixel: %d", code)
	}
	code, adBody := get(t, d.edge+"/ad?site="+d.demoSite+"&slot="+d.demoSlot, cookie)
	var ad struct {
		Campaign string `json:"campaign"`
	}
	if code != 200 || json.Unmarshal([]byte(adBody), &ad) != nil || ad.Campaign == "" {
		t.Fatalf("ad request: want 200 with an ad, got %d %.200s", code, adBody)
	}
	t.Logf("sent: a pixel hit and an ad request (campaign %s) as visitor %s", ad.Campaign, visitor)

	// Stored: both events are in the stream, on the cluster.
	var kinds []event.Kind
	deadline := time.Now().Add(d.pollTimeout)
	for {
		kinds = kinds[:0]
		// A fresh ephemeral consumer on an R3 stream may answer "no
		// responders" until its leader is elected: read again.
		_, err := bus.ReadEvents(ctx, conn.JS, first+1, func(_ uint64, e *event.Event) error {
			if e.Visitor == visitor {
				kinds = append(kinds, e.Kind)
			}
			return nil
		})
		if (err == nil && len(kinds) >= 2) || time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("reading %s: %v", bus.StreamEvents, err)
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !hasKinds(kinds, event.KindPageview, event.KindImpression) || len(kinds) != 2 {
		t.Fatalf("stored events of the visitor: %v, want exactly a pageview and an impression", kinds)
	}
	t.Logf("checked: %s holds the visitor's pageview and impression, once each", bus.StreamEvents)

	// Counted by the edge: both acknowledged by JetStream, none dropped.
	_, m := d.poll(t, d.api+"/metrics", "", func(_ int, m string) bool { return metric(m, `adsyn_events_total{stage="acknowledged"}`) >= acked+2 })
	if dropped := metric(m, `adsyn_events_total{stage="dropped"}`); dropped != 0 {
		t.Errorf("the edge dropped %v events", dropped)
	}
	t.Logf("checked: adsyn_events_total{stage=\"acknowledged\"} %v -> %v, dropped 0", acked, metric(m, `adsyn_events_total{stage="acknowledged"}`))

	// Counted by the workers: the builder made the visitor's record, the
	// aggregator counted the impression.
	d.poll(t, d.api+"/v1/visitors/"+visitor+"/segments", d.adminKey, func(code int, _ string) bool { return code == 200 })
	t.Logf("checked: the segments builder wrote the visitor's record (GET /v1/visitors/%s/segments: 200)", visitor)
	var now float64
	deadline = time.Now().Add(d.pollTimeout)
	for now = d.siteImpressions(t); now < impressions+1 && time.Now().Before(deadline); now = d.siteImpressions(t) {
		time.Sleep(200 * time.Millisecond)
	}
	if now < impressions+1 {
		t.Fatalf("site %s impressions stayed %v after the ad was served", d.demoSite, now)
	}
	t.Logf("checked: the stats aggregator counted the impression: site %s impressions %v -> %v", d.demoSite, impressions, now)
}

func hasKinds(got []event.Kind, want ...event.Kind) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

// newVisitorID returns a fresh visitor id of the cookie's form (22 characters
// of base64url), so the test finds its own events whatever ran before.
func newVisitorID(t *testing.T) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, 22)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[b[i]%64]
	}
	return string(b)
}

func (d deployment) acknowledged(t *testing.T) float64 {
	_, m := get(t, d.api+"/metrics", "")
	return metric(m, `adsyn_events_total{stage="acknowledged"}`)
}

func (d deployment) siteImpressions(t *testing.T) float64 {
	code, body := get(t, d.api+"/v1/sites/"+d.demoSite+"/stats", d.adminKey)
	if code != 200 {
		t.Fatalf("site stats: %d %.200s", code, body)
	}
	var s struct {
		Totals struct {
			Impressions float64 `json:"impressions"`
		} `json:"totals"`
	}
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("site stats: %v", err)
	}
	return s.Totals.Impressions
}

// metric returns the value of one series in a Prometheus text exposition, -1
// when it is absent.
func metric(text, series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

// poll gets url until ok holds or the deadline passes, and fails then.
func (d deployment) poll(t *testing.T, url, key string, ok func(code int, body string) bool) (int, string) {
	t.Helper()
	deadline := time.Now().Add(d.pollTimeout)
	for {
		code, body := get(t, url, key)
		if ok(code, body) {
			return code, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: still %d %.300s after %s", url, code, body, d.pollTimeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var client = &http.Client{Timeout: 5 * time.Second}

// get returns the status and body of url; key is an API key, or a
// "uid=…" cookie for the edge.
func get(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36")
	switch {
	case strings.HasPrefix(key, "uid="):
		req.Header.Set("Cookie", key)
	case key != "":
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, fmt.Sprintf("(%v)", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, string(b)
}
