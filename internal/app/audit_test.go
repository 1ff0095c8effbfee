package app_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/segments"
	"github.com/adsyn/adsyn/syndication"
)

// mixedTraffic sends clean and dirty input through every door: pixel GET
// and POST of each kind, /ad with its viewable beacon and click, and calls.
func mixedTraffic(t *testing.T, d *doors) {
	t.Helper()
	dirty := url.Values{
		"u":    {"https://example.org/hiv-test/positive?email=john@example.com&utm_source=news#f"},
		"r":    {"https://www.mosque.example/"},
		"q":    {"abortion clinic, call +7 916 123-45-67"},
		"c":    {"hiv,plumbing,jane@doe.example"},
		"site": {"shop"},
		"n":    {"signup 198.51.100.7"},
	}
	clean := url.Values{"u": {"https://shop.example/taps?utm_source=news"}, "c": {"plumbing"}, "site": {"shop"}, "q": {"kitchen taps"}}
	for _, kind := range []string{"pageview", "search", "conversion", "custom", "error"} {
		for _, q := range []url.Values{dirty, clean} {
			q.Set("e", kind)
			if code, _ := d.edgeDo(t, "GET", "/p.gif?"+q.Encode(), "", "198.51.100.77"); code != 200 {
				t.Fatalf("pixel %d", code)
			}
			if code, _ := d.edgeDo(t, "POST", "/p", q.Encode(), "2001:db8:85a3::77"); code != 204 {
				t.Fatalf("beacon %d", code)
			}
		}
	}
	for _, page := range []string{"https://example.org/hiv-test/positive", "https://shop.example/u/john%40example.com", "https://shop.example/taps"} {
		code, body := d.edgeDo(t, "GET", "/ad?site=demo&slot=side&c=hiv,home&url="+url.QueryEscape(page), "", "198.51.100.78")
		if code != 200 {
			t.Fatalf("/ad %d %s", code, body)
		}
		for _, key := range []string{`"imp":"`, `"click":"`} {
			i := strings.Index(body, key)
			if i < 0 {
				t.Fatalf("no %s in %s", key, body)
			}
			u, err := url.Parse(strings.SplitN(body[i+len(key):], `"`, 2)[0])
			if err != nil {
				t.Fatal(err)
			}
			if code, _ := d.edgeDo(t, "GET", u.Path+"?"+u.RawQuery, "", "198.51.100.79"); code != 204 && code != 302 {
				t.Fatalf("%s %d", u.Path, code)
			}
		}
	}
	for i, typ := range []string{"inbound", "missed-9161234567"} {
		body := `{"tracking_number":"` + doorNumber + `","start":"` + time.Now().Add(-time.Duration(i+1)*time.Minute).UTC().Format(time.RFC3339) +
			`","duration_s":42,"call_type":"` + typ + `","caller_number":"+7 916 123-45-67"}`
		if code, resp := d.api(t, "POST", "/v1/events/call", d.keys["telephony"], body); code != 202 {
			t.Fatalf("call %d %s", code, resp)
		}
	}
}

// waitBuilt waits until the segment builder has written a visitor record.
func waitBuilt(t *testing.T, d *doors) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := d.api(t, "GET", "/v1/visitors/"+doorVisitor+"/segments", d.keys["admin"], ""); code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no visitor record built")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func audit(t *testing.T, dir string) (int, string) {
	t.Helper()
	cfg := testConfig(t)
	cfg.DataDir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out strings.Builder
	n, err := app.Audit(ctx, cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	return n, out.String()
}

// TestAuditDoors is the CI hook: a mixed set, dirty inputs included, goes
// through every door of `adsyn serve --demo`, which then stops cleanly; the
// audit of its data directory comes back clean. With ADSYN_AUDIT_DIR set,
// the data directory is that one and is left for `adsyn audit --data`.
func TestAuditDoors(t *testing.T) {
	dir := os.Getenv("ADSYN_AUDIT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	d := openDoors(t, doorConfig(t, dir))
	mixedTraffic(t, d)
	waitBuilt(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	n, out := audit(t, dir)
	if n != 0 || !strings.Contains(out, "audit: clean") {
		t.Fatalf("audit found %d:\n%s", n, out)
	}
	for _, store := range []string{"ADSYN_EVENTS", "adsyn_segments", "adsyn_profiles", "partner views"} {
		if strings.Contains(out, store+" 0") || !strings.Contains(out, store+" ") {
			t.Errorf("nothing scanned in %s: %s", store, out)
		}
	}
	t.Log(out)
}

// TestAuditFindsPlanted writes dirty records raw, past the choke point,
// into each store; the audit names every one, with where it is.
func TestAuditFindsPlanted(t *testing.T) {
	dir := t.TempDir()
	cfg := doorConfig(t, dir)
	a, _ := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if n, out := audit(t, dir); n != 0 {
		t.Fatalf("a fresh demo store: %d findings\n%s", n, out)
	}

	a, _ = start(t, cfg)
	js := a.Conn().JS
	ev := event.Event{ID: event.NewID(), Kind: event.KindSearch, Query: "hiv test", URL: "https://shop.example/p?email=a%40b.example", IP: "203.0.113.77", Site: "shop"}
	m := nats.NewMsg(event.Subject(ev.Kind, 0))
	m.Data = ev.Marshal()
	m.Header.Set(event.HeaderCount, "1")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	seg := segments.Record{Visitor: "PlantedPlantedPlanted1", Segments: []segments.Score{{ID: "abortion-care", Score: 1, Rule: "kw"}}, Langs: []string{"en"}}
	kv, err := js.KeyValue(ctx, bus.BucketSegments)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, seg.Visitor, seg.AppendMsgpack(nil)); err != nil {
		t.Fatal(err)
	}
	prof, err := js.KeyValue(ctx, bus.BucketProfiles)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prof.Put(ctx, "planted", []byte(`{"schema":1,"id":"planted","name":"Bob, mail bob@example.com","city":"Oslo","created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	// The delivery log: revisions of the states, and what an older version
	// left in its own stream.
	if _, err := js.Publish(ctx, "$KV."+bus.BucketSyndState+".demo.planted", []byte(`{"v":1,"h":"9f86d0818840","id":"msg_2Ld3Tq1234567","entry":{"partner":"demo","user":"planted","webhook_id":"msg_2Ld3Tq1234567","answer":"ok, call +44 20 7946 0958"}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: syndication.StreamLog, Subjects: []string{"adsyn.synd.log.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "adsyn.synd.log.demo.planted", []byte(`{"seq":1,"partner":"demo","user":"planted","answer":"mail me: bob@example.com"}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	n, out := audit(t, dir)
	for _, want := range []string{
		"ADSYN_EVENTS seq", "query: " + "P1 sensitive term (health)",
		"url: P2 contact data (email)", "ip: P6 full IP address",
		"adsyn_segments PlantedPlantedPlanted1 rev", "segments[0].id: P1",
		"adsyn_profiles planted rev", "name: P2 contact data (email)",
		"KV_adsyn_synd_state $KV.adsyn_synd_state.demo.planted seq", "entry.answer: P2 contact data (phone)",
		"ADSYN_SYND_LOG adsyn.synd.log.demo.planted seq", "answer: P2 contact data (email)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the audit does not say %q", want)
		}
	}
	if n != 7 || !strings.Contains(out, "audit: 7 findings") {
		t.Errorf("%d findings:\n%s", n, out)
	}
	for _, secret := range []string{"bob@example.com", "7946 0958", "203.0.113.77", "hiv test"} {
		if strings.Contains(out, secret) {
			t.Errorf("the audit's output repeats %q", secret)
		}
	}
}
