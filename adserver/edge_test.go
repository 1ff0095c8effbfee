package adserver

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/segments"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// recorder is a Publisher that keeps decoded copies of what it is given.
type recorder struct {
	mu  sync.Mutex
	evs []event.Event
}

func (r *recorder) Publish(e *event.Event) bool {
	var c event.Event
	if err := event.Unmarshal(e.Marshal(), &c); err != nil {
		panic(err)
	}
	r.mu.Lock()
	r.evs = append(r.evs, c)
	r.mu.Unlock()
	return true
}

func (r *recorder) kinds(k event.Kind) []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event.Event
	for _, e := range r.evs {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// encoder publishes like the real publisher: it encodes into its buffer.
type encoder struct{ buf []byte }

func (p *encoder) Publish(e *event.Event) bool {
	p.buf = e.AppendMsgpack(p.buf[:0])
	return true
}

// memRecords is an in-memory Records.
type memRecords map[string]*segments.Record

func (m memRecords) Get(_ context.Context, v string) (*segments.Record, error) {
	if r, ok := m[v]; ok {
		return r, nil
	}
	return nil, segments.ErrNotFound
}

// staticCatalog serves a fixed index, without NATS.
func staticCatalog(ix *Index) *Catalog {
	c := &Catalog{}
	c.ix.Store(ix)
	return c
}

type edgeEnv struct {
	e    *Edge
	pub  *recorder
	reg  *metrics.Registry
	base string
	now  *time.Time
}

func newEdgeEnv(t *testing.T, snap *Snapshot, opts ...EdgeOption) *edgeEnv {
	t.Helper()
	now := t0
	env := &edgeEnv{pub: &recorder{}, reg: metrics.NewRegistry(), now: &now}
	all := append([]EdgeOption{WithTokenKeys(testKey), WithPublisher(env.pub), WithMetrics(env.reg),
		WithClock(func() time.Time { return *env.now })}, opts...)
	e, err := NewEdge(context.Background(), staticCatalog(Build(snap, t0, nil)), all...)
	if err != nil {
		t.Fatal(err)
	}
	env.e = e
	env.base = serveEdge(t, e)
	return env
}

// serveEdge serves e on a loopback port until the test ends.
func serveEdge(t *testing.T, e *Edge) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{ReadBufferSize: 16 << 10, Handler: func(ctx *fasthttp.RequestCtx) {
		if !e.Route(ctx) {
			ctx.NotFound()
		}
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return "http://" + ln.Addr().String()
}

var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func get(t *testing.T, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", BenchUserAgent)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

type adJSON struct {
	ID, Campaign, Creative, Type, Click, Imp, HTML string
	W, H                                           int
	Native                                         *NativeAd
}

func (env *edgeEnv) ad(t *testing.T, query string, hdr ...string) (int, adJSON) {
	t.Helper()
	res, body := get(t, env.base+"/ad?"+query, hdr...)
	var a adJSON
	if res.StatusCode == 200 {
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("ad JSON: %v\n%s", err, body)
		}
	}
	return res.StatusCode, a
}

func counter(reg *metrics.Registry, series string) string {
	var b strings.Builder
	reg.WriteText(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimPrefix(line, series+" ")
		}
	}
	return ""
}

func TestAdClickImp(t *testing.T) {
	env := newEdgeEnv(t, testSnap(camp("c1")), WithConsent(func(*fasthttp.RequestCtx) consent.Set { return consent.All }))
	code, ad := env.ad(t, "site=s1&slot=side&u=v1&c=sport&url=https://news.example/a?email=x@y", "Accept-Language", "de-DE,de;q=0.9")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if ad.Campaign != "c1" || ad.Creative != "c1-cr" || ad.Type != "image" || ad.W != 300 || ad.H != 250 {
		t.Fatalf("ad %+v", ad)
	}
	if !strings.HasPrefix(ad.Click, env.base+"/click?t=") || !strings.HasPrefix(ad.Imp, env.base+"/imp?t=") {
		t.Fatalf("click %q imp %q", ad.Click, ad.Imp)
	}
	if !strings.Contains(ad.HTML, `src="https://example.com/de.png"`) || !strings.Contains(ad.HTML, ad.Click[len(env.base):]) {
		t.Fatalf("html (German variant, click link):\n%s", ad.HTML)
	}
	imps := env.pub.kinds(event.KindImpression)
	if len(imps) != 1 {
		t.Fatalf("%d impressions", len(imps))
	}
	ev := imps[0]
	if ev.Visitor != "v1" || ev.Site != "s1" || ev.Slot != "side" || ev.Campaign != "c1" || ev.Lang != "de" ||
		ev.URL != "https://news.example/a" || len(ev.Categories) != 1 || ev.Consent != consent.All || ev.ID.String() != ad.ID {
		t.Fatalf("impression event %+v", ev)
	}

	res, _ := get(t, ad.Click)
	if res.StatusCode != 302 || res.Header.Get("Location") != "https://example.de/" {
		t.Fatalf("click: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	clicks := env.pub.kinds(event.KindClick)
	if len(clicks) != 1 || clicks[0].Campaign != "c1" || clicks[0].Visitor != "v1" || clicks[0].ID == ev.ID {
		t.Fatalf("click events %+v", clicks)
	}
	res, _ = get(t, ad.Imp)
	if res.StatusCode != 204 || len(env.pub.kinds(event.KindViewable)) != 1 {
		t.Fatalf("imp: %d, %d viewable", res.StatusCode, len(env.pub.kinds(event.KindViewable)))
	}
	if got := counter(env.reg, `adsyn_ad_clicks_total`); got != "1" {
		t.Errorf("clicks metric %q", got)
	}
}

func TestClickTokenTampering(t *testing.T) {
	env := newEdgeEnv(t, testSnap(camp("c1")))
	_, ad := env.ad(t, "site=s1&slot=side")
	tok := ad.Click[strings.Index(ad.Click, "t=")+2:]
	impTok := ad.Imp[strings.Index(ad.Imp, "t=")+2:]
	other := mustSigner([]byte("another key, 32 bytes long......"))
	forged := string(other.Append(nil, &Token{Kind: TokenClick, Campaign: "c1", Landing: "https://evil.example/"}))
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for name, tk := range map[string]string{
		"missing":          "",
		"garbage":          "not-a-token",
		"altered start":    flip(tok, 5),
		"altered middle":   flip(tok, len(tok)/2),
		"altered end":      flip(tok, len(tok)-1),
		"truncated":        tok[:len(tok)-4],
		"extended":         tok + "AAAA",
		"other key":        forged,
		"impression token": impTok,
		"huge":             strings.Repeat("A", MaxTokenLen+4),
	} {
		t.Run(name, func(t *testing.T) {
			res, _ := get(t, env.base+"/click?t="+url.QueryEscape(tk))
			if res.StatusCode != 400 || res.Header.Get("Location") != "" {
				t.Fatalf("got %d, Location %q; want 400 and no redirect", res.StatusCode, res.Header.Get("Location"))
			}
		})
	}
	if n := len(env.pub.kinds(event.KindClick)); n != 0 {
		t.Fatalf("%d clicks counted from bad tokens", n)
	}
	res, _ := get(t, env.base+"/imp?t="+tok)
	if res.StatusCode != 400 {
		t.Fatalf("click token on /imp: %d", res.StatusCode)
	}
	// An authentic token past its lifetime still takes the visitor where the
	// ad said, uncounted.
	*env.now = t0.Add(25 * time.Hour)
	res, _ = get(t, ad.Click)
	if res.StatusCode != 302 || res.Header.Get("Location") != "https://example.com/c1" || len(env.pub.kinds(event.KindClick)) != 0 {
		t.Fatalf("expired: %d %q, %d clicks", res.StatusCode, res.Header.Get("Location"), len(env.pub.kinds(event.KindClick)))
	}
}

func TestAdConsent(t *testing.T) {
	seg := camp("c-seg", func(c *Campaign) { c.CPM = 9; c.Targeting.Segments.Any = []string{"cycling"} })
	recs := memRecords{"v1": record("cycling")}
	cases := []struct {
		name        string
		cs          consent.Set
		wantCode    int
		wantCamp    string
		wantVisitor string
	}{
		{"nothing allowed", 0, 204, "", ""},
		{"contextual only", consent.Set(0).With(consent.Contextual), 200, "c1", ""},
		{"store, no personalization", consent.Set(0).With(consent.Contextual).With(consent.StoreOnDevice), 200, "c1", "v1"},
		{"personalized", consent.All, 200, "c-seg", "v1"},
		{"personalize without store", consent.All.Without(consent.StoreOnDevice), 200, "c1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEdgeEnv(t, testSnap(camp("c1"), seg), WithSegments(recs),
				WithConsent(func(*fasthttp.RequestCtx) consent.Set { return tc.cs }))
			code, ad := env.ad(t, "site=s1&slot=side", "Cookie", "uid=v1")
			if code != tc.wantCode || ad.Campaign != tc.wantCamp {
				t.Fatalf("got %d %q, want %d %q", code, ad.Campaign, tc.wantCode, tc.wantCamp)
			}
			if imps := env.pub.kinds(event.KindImpression); tc.wantCode == 200 && (len(imps) != 1 || imps[0].Visitor != tc.wantVisitor) {
				t.Fatalf("impressions %+v, want visitor %q", imps, tc.wantVisitor)
			}
		})
	}
}

func TestAdBadInputAndNoAd(t *testing.T) {
	env := newEdgeEnv(t, testSnap(camp("c1")))
	for q, want := range map[string]int{
		"":                     400,
		"site=s1":              400,
		"site=s1&slot=si%20de": 400,
		"site=" + strings.Repeat("x", 65) + "&slot=side": 400,
		"site=nope&slot=side":                            204,
		"site=s1&slot=top":                               204, // nothing fits 728x90
		"site=s1&slot=side&c=%00,,,,":                    200,
	} {
		if code, _ := env.ad(t, q); code != want {
			t.Errorf("/ad?%s: %d, want %d", q, code, want)
		}
	}
}

type panicRecords struct{}

func (panicRecords) Get(context.Context, string) (*segments.Record, error) { panic("boom") }

func TestAdFaultIs204(t *testing.T) {
	env := newEdgeEnv(t, testSnap(camp("c1")), WithSegments(panicRecords{}),
		WithConsent(func(*fasthttp.RequestCtx) consent.Set { return consent.All }))
	code, _ := env.ad(t, "site=s1&slot=side&u=v1")
	if code != 204 {
		t.Fatalf("fault answered %d", code)
	}
	if got := counter(env.reg, `adsyn_ad_requests_total{result="fault"}`); got != "1" {
		t.Fatalf("fault metric %q", got)
	}
}

func TestAdBots(t *testing.T) {
	env := newEdgeEnv(t, testSnap(camp("c1")))
	for _, ua := range []string{"curl/8.5.0", "", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"} {
		if code, _ := env.ad(t, "site=s1&slot=side", "User-Agent", ua); code != 204 {
			t.Errorf("%q: %d, want 204", ua, code)
		}
	}
	if n := len(env.pub.kinds(event.KindImpression)); n != 0 {
		t.Fatalf("%d impressions for bots", n)
	}
	env = newEdgeEnv(t, testSnap(camp("c1")), WithBots(true))
	if code, _ := env.ad(t, "site=s1&slot=side", "User-Agent", "curl/8.5.0"); code != 200 {
		t.Fatalf("WithBots(true): %d", code)
	}
}

func TestAdHTMLAndCORS(t *testing.T) {
	env := newEdgeEnv(t, testSnap(camp("c1")))
	res, body := get(t, env.base+"/ad?site=s1&slot=side&fmt=html", "Origin", "https://pub.example")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, `<img src="https://example.com/c1.png"`) || !strings.Contains(body, "/click?t=") {
		t.Fatalf("%d %s\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if res.Header.Get("Access-Control-Allow-Origin") != "https://pub.example" || res.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("CORS headers %v", res.Header)
	}
}

func TestProfileCreative(t *testing.T) {
	snap := testSnap(camp("c1"))
	cr := snap.Creatives["c1-cr"]
	cr.Type, cr.ProfileUser, cr.Variants = Profile, "u42", nil
	cards := map[string]ProfileCard{"u42": {Name: "Ada <Lovelace>", Competence: "Analytical engines", Price: "from 40 EUR/h", URL: "https://site.example/u42"}}
	env := newEdgeEnv(t, snap, WithProfiles(func(id string) (ProfileCard, bool) { c, ok := cards[id]; return c, ok }))
	code, ad := env.ad(t, "site=s1&slot=side")
	if code != 200 || ad.Type != "profile" || !strings.Contains(ad.HTML, "Ada &lt;Lovelace&gt;") || !strings.Contains(ad.HTML, "from 40 EUR/h") {
		t.Fatalf("%d %+v", code, ad)
	}
	if res, _ := get(t, ad.Click); res.Header.Get("Location") != "https://site.example/u42" {
		t.Fatalf("profile click goes to %q", res.Header.Get("Location"))
	}
	delete(cards, "u42") // the user withdrew advertising use
	if code, _ := env.ad(t, "site=s1&slot=side"); code != 204 {
		t.Fatalf("withdrawn profile: %d", code)
	}
}

func TestTagJS(t *testing.T) {
	env := newEdgeEnv(t, testSnap())
	res, body := get(t, env.base+"/tag.js")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/javascript") {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{"__tcfapi", "sandbox", "IntersectionObserver", "0.5", "1000", "/ad?", "gdpr_consent"} {
		if !strings.Contains(body, want) {
			t.Errorf("tag.js lacks %q", want)
		}
	}
	// What travels is the gzipped tag (TagJS serves it to every browser).
	if len(body) > 5120 || len(tagGzip) > 2048 {
		t.Errorf("tag.js is %d bytes, %d gzipped; keep it small", len(body), len(tagGzip))
	}
	t.Logf("tag.js: %d bytes, %d gzipped", len(body), len(tagGzip))
}

func TestFrequencyCapOnOneEdge(t *testing.T) {
	env := newEdgeEnv(t, testSnap(camp("c1", func(c *Campaign) {
		c.CPM = 5
		c.Caps = []FreqCap{{Count: 2, Window: Duration(time.Hour)}}
	}), camp("c2")), WithConsent(func(*fasthttp.RequestCtx) consent.Set { return consent.All }))
	var got []string
	for range 4 {
		_, ad := env.ad(t, "site=s1&slot=side&u=v9")
		got = append(got, ad.Campaign)
	}
	if strings.Join(got, ",") != "c1,c1,c2,c2" {
		t.Fatalf("served %v", got)
	}
	if _, ad := env.ad(t, "site=s1&slot=side&u=v10"); ad.Campaign != "c1" {
		t.Fatalf("another visitor got %q", ad.Campaign)
	}
}

func TestGeo(t *testing.T) {
	g, err := OpenGeoBytes(testGeoDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for ip, want := range map[string][2]string{
		"81.2.69.160":      {"DE", "DE-BY"},
		"81.2.69.1":        {"DE", "DE-BY"},
		"2a02:8100::1":     {"FR", ""},
		"192.0.2.1":        {"", ""},
		"::ffff:81.2.69.7": {"DE", "DE-BY"},
	} {
		c, r := g.Lookup(netip.MustParseAddr(ip))
		if c != want[0] || r != want[1] {
			t.Errorf("%s: %q %q, want %q", ip, c, r, want)
		}
	}
	env := newEdgeEnv(t, testSnap(camp("c1", func(c *Campaign) { c.Targeting.Countries.Include = []string{"DE-BY"} })),
		WithGeo(g), WithClientIP(func(ctx *fasthttp.RequestCtx) netip.Addr {
			a, _ := netip.ParseAddr(string(ctx.Request.Header.Peek("X-Test-IP")))
			return a
		}))
	if code, _ := env.ad(t, "site=s1&slot=side", "X-Test-IP", "2a02:8100::1"); code != 204 {
		t.Fatalf("FR visitor: %d", code)
	}
	if code, _ := env.ad(t, "site=s1&slot=side", "X-Test-IP", "81.2.69.160"); code != 200 {
		t.Fatalf("Bavarian visitor: %d", code)
	}
	imps := env.pub.kinds(event.KindImpression)
	if len(imps) != 1 || imps[0].Country != "DE" || imps[0].IP != "" {
		t.Fatalf("event %+v: the country only, never the address", imps)
	}
}

func mustSigner(key []byte) *signer {
	s, err := newSigner(0, []TokenKey{{ID: 0, Key: key}}, nil)
	if err != nil {
		panic(err)
	}
	return s
}

// A rotation: the new key is added to verify first, then signs; tokens the
// old key signed still count until it is dropped, and then are refused.
func TestTokenKeyRotation(t *testing.T) {
	env := newEdgeEnv(t, testSnap(camp("c1")))
	landing := func(tok string) int {
		ctx := &fasthttp.RequestCtx{}
		ctx.Request.SetRequestURI("/click?t=" + tok)
		env.e.Click(ctx)
		return ctx.Response.StatusCode()
	}
	token := func() string {
		_, ad := env.ad(t, "site=s1&slot=side")
		return ad.Click[strings.Index(ad.Click, "t=")+2:]
	}
	old := token()
	newKey := TokenKey{ID: 7, Key: []byte("the next key, 32 bytes long.....")}
	// Step 1: every edge verifies the new key; the old one still signs.
	if err := env.e.SetTokenKeys(0, TokenKey{ID: 0, Key: testKey}, newKey); err != nil {
		t.Fatal(err)
	}
	if got := landing(old); got != fasthttp.StatusFound {
		t.Fatalf("a token of the old key, after the new key was added: %d", got)
	}
	// Step 2: the new key signs; old tokens still count.
	if err := env.e.SetTokenKeys(7, TokenKey{ID: 0, Key: testKey}, newKey); err != nil {
		t.Fatal(err)
	}
	fresh := token()
	if tk, err := mustSigner(testKey).Parse([]byte(fresh), TokenClick); err == nil {
		t.Fatalf("a token signed after the rotation verifies under the old key: %+v", tk)
	}
	for name, tok := range map[string]string{"old": old, "new": fresh} {
		if got := landing(tok); got != fasthttp.StatusFound {
			t.Errorf("%s token after the new key signs: %d", name, got)
		}
	}
	// Step 3: the old key dropped; its tokens are refused, the new ones count.
	if err := env.e.SetTokenKeys(7, newKey); err != nil {
		t.Fatal(err)
	}
	if got := landing(old); got != fasthttp.StatusBadRequest {
		t.Errorf("a token of a dropped key: %d, want 400", got)
	}
	if got := landing(fresh); got != fasthttp.StatusFound {
		t.Errorf("a token of the new key: %d", got)
	}
	// A set without its signing key, or with an id twice, is refused.
	if err := env.e.SetTokenKeys(9, newKey); err == nil {
		t.Error("a signing key outside the set was taken")
	}
	if err := env.e.SetTokenKeys(7, newKey, newKey); err == nil {
		t.Error("a key id given twice was taken")
	}
}
