package adserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/api/apitest"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/segments"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// natsEdge is an edge with its own connection and catalog on a shared server.
type natsEdge struct {
	cat  *Catalog
	e    *Edge
	pub  *recorder
	base string
}

// startEdge gives the edge opts, and its catalog those of them a catalog reads too.
func startEdge(t *testing.T, srv *bustest.Server, id string, opts ...EdgeOption) *natsEdge {
	t.Helper()
	ctx := testCtx(t)
	conn := srv.Connect(t)
	catOpts := []CatalogOption{WithEdgeID(id), WithPaceInterval(40 * time.Millisecond)}
	for _, o := range opts {
		if c, ok := o.(CatalogOption); ok {
			catOpts = append(catOpts, c)
		}
	}
	cat, err := NewCatalog(ctx, conn.JS, catOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cat.Close)
	ne := &natsEdge{cat: cat, pub: &recorder{}}
	ne.e, err = NewEdge(ctx, cat, append([]EdgeOption{WithTokenKeys(testKey), WithPublisher(ne.pub)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ne.base = serveEdge(t, ne.e)
	return ne
}

func (ne *natsEdge) ad(t *testing.T, query string) string {
	t.Helper()
	res, body := get(t, ne.base+"/ad?"+query)
	switch res.StatusCode {
	case 200:
		var a adJSON
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatal(err)
		}
		return a.Campaign
	case 204:
		return ""
	}
	t.Fatalf("/ad: %d %s", res.StatusCode, body)
	return ""
}

func seedBasics(t *testing.T, st *Store, camps ...*Campaign) {
	t.Helper()
	ctx := testCtx(t)
	for _, a := range []*Advertiser{{ID: "a1", Name: "A1"}, {ID: "house", Name: "House"}} {
		if err := st.PutAdvertiser(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PutSite(ctx, &Site{ID: "s1", Publisher: "p1", Name: "S1", Slots: []Slot{{ID: "side", Sizes: []string{"300x250"}}}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range camps {
		if err := st.PutCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := st.PutCreative(ctx, &Creative{ID: c.ID + "-cr", Advertiser: c.Advertiser, Campaign: c.ID, Type: Image,
			Sizes: []string{"300x250"}, Landing: "https://example.com/" + c.ID, Content: Content{Image: "https://example.com/i.png"}}); err != nil {
			t.Fatal(err)
		}
	}
}

func houseCampaign() *Campaign {
	return &Campaign{ID: "h", Advertiser: "house", Name: "House", Start: start, Priority: 16}
}

// TestIndexSwap: a change through the store is live on two edges shortly,
// and impressions reach ADSYN_EVENTS through the real publisher.
func TestIndexSwap(t *testing.T) {
	srv := bustest.StartServer(t)
	ctx := testCtx(t)
	conn := srv.Connect(t)
	pub, err := bus.NewPublisher(conn.NC, bus.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e1 := startEdge(t, srv, "e1", WithPublisher(pub))
	e2 := startEdge(t, srv, "e2")
	if got := e1.ad(t, "site=s1&slot=side"); got != "" {
		t.Fatalf("empty model served %q", got)
	}
	st, err := NewStore(ctx, conn.JS)
	if err != nil {
		t.Fatal(err)
	}
	seedBasics(t, st, &Campaign{ID: "c1", Advertiser: "a1", Name: "C1", Start: start, CPM: 2})
	for i, ne := range []*natsEdge{e1, e2} {
		took := waitFor(t, "campaign live", 5*time.Second, func() bool { return ne.ad(t, "site=s1&slot=side") == "c1" })
		t.Logf("edge %d serves the new campaign after %s", i+1, took)
	}
	c, rev, err := st.Campaign(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	c.Status = Paused
	if _, err := st.write(ctx, prefixCampaign, "c1", c, false, rev); err != nil {
		t.Fatal(err)
	}
	for _, ne := range []*natsEdge{e1, e2} {
		waitFor(t, "pause live", 5*time.Second, func() bool { return ne.ad(t, "site=s1&slot=side") == "" })
	}
	if err := pub.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	var imps int
	if _, err := bus.ReadEvents(ctx, conn.JS, 1, func(_ uint64, e *event.Event) error {
		if e.Kind == event.KindImpression && e.Campaign == "c1" {
			imps++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if imps == 0 {
		t.Fatal("no impression event in ADSYN_EVENTS")
	}
}

// TestBudgetAcrossEdges: two edges share a total budget through NATS.
func TestBudgetAcrossEdges(t *testing.T) {
	srv := bustest.StartServer(t)
	st, err := NewStore(testCtx(t), srv.Connect(t).JS)
	if err != nil {
		t.Fatal(err)
	}
	const budget = 60
	seedBasics(t, st, &Campaign{ID: "b", Advertiser: "a1", Name: "Budgeted", Start: start, Priority: 4, CPM: 3,
		Budget: Budget{Unit: Impressions, Total: budget}}, houseCampaign())
	edges := []*natsEdge{startEdge(t, srv, "e1"), startEdge(t, srv, "e2")}
	served := map[string]int{}
	total := func() int { return served["e1"] + served["e2"] }
	deadline := time.Now().Add(20 * time.Second)
	var lastGrowth time.Time
	for time.Now().Before(deadline) {
		before := total()
		for i, ne := range edges {
			if ne.ad(t, "site=s1&slot=side") == "b" {
				served[fmt.Sprint("e", i+1)]++
			}
		}
		if total() > before {
			lastGrowth = time.Now()
		}
		if total() >= budget && time.Since(lastGrowth) > 500*time.Millisecond {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("served %v of a budget of %d", served, budget)
	if total() < budget || total() > budget+4 {
		t.Fatalf("served %d impressions of a total budget of %d", total(), budget)
	}
	if served["e1"] == 0 || served["e2"] == 0 {
		t.Fatalf("one edge never served: %v", served)
	}
}

// TestDailyPacingAcrossEdges: at noon, a daily budget of 1000 impressions
// lets two edges together serve about half of it.
func TestDailyPacingAcrossEdges(t *testing.T) {
	srv := bustest.StartServer(t)
	st, err := NewStore(testCtx(t), srv.Connect(t).JS)
	if err != nil {
		t.Fatal(err)
	}
	seedBasics(t, st, &Campaign{ID: "d", Advertiser: "a1", Name: "Daily", Start: start, Priority: 4, CPM: 3,
		Budget: Budget{Unit: Impressions, Daily: 1000}}, houseCampaign())
	noon := time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour)
	began := time.Now()
	clock := WithClock(func() time.Time { return noon.Add(time.Since(began)) })
	edges := []*natsEdge{startEdge(t, srv, "e1", clock), startEdge(t, srv, "e2", clock)}
	var mu sync.Mutex
	served := 0
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, ne := range edges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, body := get(t, ne.base+"/ad?site=s1&slot=side")
				if res.StatusCode == 200 && strings.Contains(body, `"campaign":"d"`) {
					mu.Lock()
					served++
					mu.Unlock()
				}
			}
		}()
	}
	// Allowed by noon: half the day's 1000, plus a 1% margin.
	const allowed = 510
	last, stable := 0, time.Now()
	waitFor(t, "pacing to settle", 30*time.Second, func() bool {
		mu.Lock()
		n := served
		mu.Unlock()
		if n != last {
			last, stable = n, time.Now()
		}
		return n >= allowed-5 && time.Since(stable) > 500*time.Millisecond
	})
	close(stop)
	wg.Wait()
	t.Logf("served %d by noon of a daily budget of 1000", served)
	if served < allowed-5 || served > allowed+6 {
		t.Fatalf("served %d, want about %d", served, allowed)
	}
}

// TestCapsAcrossEdges: a frequency cap holds across two edges once the
// record in adsyn_segments (the builder's counts, written here as the
// builder would) reflects the impressions, and each edge holds it for its
// own impressions before that.
func TestCapsAcrossEdges(t *testing.T) {
	srv := bustest.StartServer(t)
	ctx := testCtx(t)
	conn := srv.Connect(t)
	st, err := NewStore(ctx, conn.JS)
	if err != nil {
		t.Fatal(err)
	}
	seedBasics(t, st, &Campaign{ID: "f", Advertiser: "a1", Name: "Capped", Start: start, Priority: 4, CPM: 3,
		Caps: []FreqCap{{Count: 3, Window: Duration(24 * time.Hour)}}}, houseCampaign())
	records, err := segments.NewKVStore(ctx, conn.JS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(records.Close)
	all := WithConsent(func(*fasthttp.RequestCtx) consent.Set { return consent.All })
	// The edges wait for every record read: a read slower than the default
	// wait would leave the capped campaign out (TestColdRecordDoesNotBlockTheAd).
	wait := WithRecordWait(-1)
	e1 := startEdge(t, srv, "e1", all, wait, WithSegments(records))
	e2 := startEdge(t, srv, "e2", all, wait, WithSegments(records))
	kv, err := conn.JS.KeyValue(ctx, bus.BucketSegments)
	if err != nil {
		t.Fatal(err)
	}
	// build writes v1's record from every impression the edges published.
	build := func() {
		t.Helper()
		rec := segments.Record{Visitor: "v1"}
		var times []int64
		for _, ne := range []*natsEdge{e1, e2} {
			for _, ev := range ne.pub.kinds(event.KindImpression) {
				if ev.Visitor == "v1" && ev.Campaign == "f" {
					times = append(times, ev.TS)
				}
				rec.LastSeen = max(rec.LastSeen, ev.TS)
			}
		}
		slices.Sort(times)
		rec.Caps = []segments.Cap{{Campaign: "f", Times: times}}
		if _, err := kv.Put(ctx, "v1", rec.AppendMsgpack(nil)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "record visible", 5*time.Second, func() bool {
			r, err := records.Get(ctx, "v1")
			return err == nil && r.LastSeen == rec.LastSeen
		})
	}
	q := "site=s1&slot=side&u=v1"
	var got []string
	for range 2 {
		got = append(got, e1.ad(t, q))
	}
	build()
	got = append(got, e2.ad(t, q)) // the third
	got = append(got, e2.ad(t, q)) // capped by its own memory and the record
	build()
	got = append(got, e1.ad(t, q), e2.ad(t, q))
	if want := []string{"f", "f", "f", "h", "h", "h"}; !slices.Equal(got, want) {
		t.Fatalf("served %v, want %v", got, want)
	}
	if e1.ad(t, "site=s1&slot=side&u=v2") != "f" {
		t.Fatal("another visitor is capped too")
	}
}

// TestAPI drives the CRUD routes with keys of every role.
func TestAPI(t *testing.T) {
	srv := bustest.StartServer(t)
	ctx := testCtx(t)
	conn := srv.Connect(t)
	keys, err := auth.NewKeys(ctx, conn.JS, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(ctx, conn.JS, keys, WithTargetCheck(func(s string) error {
		if s == "seg-7x" {
			return fmt.Errorf("taxonomy: %s is sensitive", s)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	mux := http.NewServeMux()
	h.Routes(mux)
	keys.Routes(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	key := func(role auth.Role, owner string) string {
		s, _, err := keys.Create(ctx, role, owner, "test")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	admin, m1, m2 := key(auth.Admin, ""), key(auth.Marketer, "a1"), key(auth.Marketer, "a2")
	p1, p2 := key(auth.Publisher, "p1"), key(auth.Publisher, "p2")
	do := func(method, path, k, body string, hdr ...string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+k)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := apitest.Client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b), res.Header
	}
	expect := func(method, path, k, body string, want int, contains string, hdr ...string) http.Header {
		t.Helper()
		code, got, h := do(method, path, k, body, hdr...)
		if code != want || !strings.Contains(got, contains) {
			t.Fatalf("%s %s: %d %s; want %d with %q", method, path, code, got, want, contains)
		}
		return h
	}
	campaign := func(id, adv, extra string) string {
		return `{"id":"` + id + `","advertiser":"` + adv + `","name":"N","start":"2025-01-01T00:00:00Z","cpm":2` + extra + `}`
	}

	expect("POST", "/v1/advertisers", admin, `{"id":"a1","name":"A1"}`, 201, `"status":"active"`)
	expect("POST", "/v1/advertisers", admin, `{"id":"a2","name":"A2"}`, 201, `"a2"`)
	expect("POST", "/v1/advertisers", admin, `{"id":"a1","name":"again"}`, 409, "exists")
	expect("POST", "/v1/advertisers", m1, `{"id":"a3","name":"not mine"}`, 403, "forbidden")
	expect("POST", "/v1/advertisers", admin, `{"id":"a 4","name":"x"}`, 400, "id")
	expect("POST", "/v1/advertisers", admin, `{"id":"a5","name":"x","color":"red"}`, 400, "unknown_field")
	expect("GET", "/v1/advertisers/a1", "", "", 401, "unauthorized")
	expect("GET", "/v1/advertisers/a1", p1, "", 403, "forbidden")

	expect("POST", "/v1/campaigns", m1, campaign("c1", "a1", ""), 201, `"priority":8`)
	expect("POST", "/v1/campaigns", m1, campaign("c2", "a2", ""), 403, "forbidden")
	expect("POST", "/v1/campaigns", admin, campaign("c9", "zz", ""), 400, "advertiser \\\"zz\\\" does not exist")
	expect("POST", "/v1/campaigns", m1, campaign("c3", "a1", `,"budget":{"unit":"coins","daily":5}`), 400, "budget.unit")
	expect("POST", "/v1/campaigns", m1, campaign("c4", "a1", `,"targeting":{"segments":{"any":["depression"]}}`), 422, "sensitive_target")
	expect("POST", "/v1/campaigns", m1, campaign("c5", "a1", `,"targeting":{"segments":{"all":["seg-7x"]}}`), 422, "taxonomy")
	expect("POST", "/v1/campaigns", m2, campaign("c2", "a2", ""), 201, "c2")
	expect("GET", "/v1/campaigns/c1", m2, "", 403, "forbidden")
	hdr := expect("GET", "/v1/campaigns/c1", m1, "", 200, `"c1"`)
	etag := hdr.Get("ETag")
	expect("PUT", "/v1/campaigns/c1", m1, campaign("c1", "a1", `,"weight":2`), 200, `"weight":2`, "If-Match", etag)
	expect("PUT", "/v1/campaigns/c1", m1, campaign("c1", "a1", `,"weight":3`), 412, "revision_conflict", "If-Match", etag)
	expect("PUT", "/v1/campaigns/c1", m1, campaign("c1", "a2", ""), 403, "forbidden") // moving it away
	expect("PUT", "/v1/campaigns/c2", m1, campaign("c2", "a1", ""), 403, "forbidden") // taking it over
	expect("PUT", "/v1/campaigns/c1", m1, campaign("c7", "a1", ""), 400, "differs")

	expect("POST", "/v1/creatives", m1, `{"id":"cr1","advertiser":"a1","campaign":"c1","type":"image","sizes":["300x250"],
		"landing":"https://example.com/","image":"https://example.com/a.png"}`, 201, "cr1")
	expect("POST", "/v1/creatives", m1, `{"id":"cr2","advertiser":"a1","campaign":"c2","type":"image","sizes":["300x250"],
		"landing":"https://example.com/","image":"https://example.com/a.png"}`, 400, "another advertiser")
	expect("POST", "/v1/creatives", m1, `{"id":"cr3","advertiser":"a1","campaign":"c1","type":"image","sizes":["300x250"],
		"landing":"javascript:alert(1)","image":"https://example.com/a.png"}`, 400, "landing")

	site := func(id, pub string) string {
		return `{"id":"` + id + `","publisher":"` + pub + `","name":"S","slots":[{"id":"side","sizes":["300x250"]}]}`
	}
	expect("POST", "/v1/sites", p1, site("s1", "p1"), 201, "s1")
	expect("POST", "/v1/sites", p1, site("s2", "p2"), 403, "forbidden")
	expect("POST", "/v1/sites", m1, site("s3", "p1"), 403, "forbidden")
	expect("POST", "/v1/sites", p2, site("s4", "p2"), 201, "s4")
	expect("GET", "/v1/sites/s1", p2, "", 403, "forbidden")
	expect("GET", "/v1/sites/s1", m1, "", 200, "s1")
	expect("POST", "/v1/sites", p1, `{"id":"s5","publisher":"p1","name":"S","slots":[]}`, 400, "slots")
	expect("POST", "/v1/sites", p1, `{"id":"s6","publisher":"p1","name":"S","domains":["https://pub.example/"],"slots":[{"id":"side","sizes":["300x250"]}]}`, 400, "not a host name")
	// Domains are host names, lowercased; the older single domain joins them.
	hdr = expect("PUT", "/v1/sites/s1", p1, `{"id":"s1","publisher":"p1","name":"S","domain":"Pub.Example","domains":["news.pub.example","pub.example"],"slots":[{"id":"side","sizes":["300x250"]}]}`,
		200, `"domains":["news.pub.example","pub.example"]`)

	// Lists come from the index: wait for it, then check what each key sees.
	waitFor(t, "index", 5*time.Second, func() bool {
		ix := h.cat.Index()
		return len(ix.Snap.Campaigns) == 2 && len(ix.Snap.Sites) == 2 && len(ix.Snap.Creatives) == 1
	})
	list := func(path, k string) []string {
		_, body, _ := do("GET", path, k, "")
		var out map[string][]struct{ ID string }
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("%s: %v %s", path, err, body)
		}
		var ids []string
		for _, v := range out {
			for _, x := range v {
				ids = append(ids, x.ID)
			}
		}
		return ids
	}
	for _, tc := range []struct {
		path, key string
		want      []string
	}{
		{"/v1/campaigns", admin, []string{"c1", "c2"}},
		{"/v1/campaigns", m1, []string{"c1"}},
		{"/v1/campaigns", m2, []string{"c2"}},
		{"/v1/campaigns?advertiser=a2", admin, []string{"c2"}},
		{"/v1/advertisers", m1, []string{"a1"}},
		{"/v1/sites", p1, []string{"s1"}},
		{"/v1/sites", m2, []string{"s1", "s4"}},
		{"/v1/creatives", m2, nil},
	} {
		if got := list(tc.path, tc.key); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.path, got, tc.want)
		}
	}
	expect("GET", "/v1/explain?site=s1&slot=side", admin, "", 200, `"chosen":"c1"`)
	expect("GET", "/v1/explain?site=s1&slot=side", m1, "", 403, "forbidden")
	expect("GET", "/v1/explain?site=s1", admin, "", 400, "required")
	expect("DELETE", "/v1/advertisers/a1", admin, "", 409, "in_use")
	expect("DELETE", "/v1/advertisers/a1", m1, "", 403, "forbidden")
	expect("DELETE", "/v1/campaigns/c2", m1, "", 403, "forbidden")
	expect("DELETE", "/v1/campaigns/c2", m2, "", 204, "")
	expect("DELETE", "/v1/campaigns/c2", m2, "", 404, "not_found")
	// Refusals are in the audit log.
	expect("GET", "/v1/audit", admin, "", 200, `"allowed":false`)
}
