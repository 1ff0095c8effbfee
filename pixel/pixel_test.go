package pixel_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/pixel"
)

const vendorID = 755

type edge struct {
	addr string
	pub  *bus.Publisher
	conn *bus.Conn
}

// startEdge serves the pixel on a loopback port over a real embedded NATS.
func startEdge(t *testing.T, opts pixel.Options) *edge {
	t.Helper()
	c := bustest.Start(t)
	pub, err := bus.NewPublisher(c.NC, bus.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Consent = consent.Policy{VendorID: vendorID}
	h := pixel.New(pub, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{ErrorHandler: pixel.ErrorHandler, ReadBufferSize: 16 << 10, Handler: func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/p.gif":
			h.GIF(ctx)
		case "/p":
			h.Beacon(ctx)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown() })
	return &edge{addr: ln.Addr().String(), pub: pub, conn: c}
}

// events stops the publisher and returns every stored event.
func (e *edge) events(t *testing.T) []event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.pub.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	var out []event.Event
	_, err := bus.ReadEvents(ctx, e.conn.JS, 1, func(_ uint64, ev *event.Event) error {
		c := *ev
		c.Categories = append([]string(nil), ev.Categories...)
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type hit struct {
	method, query, body string
	headers             map[string]string
}

func (e *edge) do(t *testing.T, h hit) *fasthttp.Response {
	t.Helper()
	req, res := fasthttp.AcquireRequest(), &fasthttp.Response{}
	defer fasthttp.ReleaseRequest(req)
	path := "/p.gif"
	if h.method == "POST" {
		path = "/p"
		req.Header.SetMethod("POST")
		req.SetBodyString(h.body)
		req.Header.SetContentType("text/plain;charset=UTF-8")
	}
	req.SetRequestURI("http://" + e.addr + path + "?" + h.query)
	req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36")
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	if err := fasthttp.DoTimeout(req, res, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return res
}

func grantAll(t *testing.T) string {
	t.Helper()
	s, err := consent.Encode(&consent.TCString{
		Version: 2, Created: time.Now(), LastUpdated: time.Now(), CmpID: 7, CmpVersion: 1,
		ConsentLanguage: "EN", VendorListVersion: 100, TcfPolicyVersion: 5, IsServiceSpecific: true,
		PurposesConsent: consent.BitsOf(1, 2, 3, 4, 7), PublisherCC: "DE",
		VendorConsents: consent.Vendors{Ranges: []consent.Range{{Start: vendorID, End: vendorID}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestThousandHitsThousandEvents(t *testing.T) {
	e := startEdge(t, pixel.Options{})
	const n = 1000
	for i := range n {
		res := e.do(t, hit{query: fmt.Sprintf("site=s1&u=%s&q=plumber&c=home,repair&e=search&seq=%d", url.QueryEscape("https://pub.example/x"), i),
			headers: map[string]string{"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"}})
		if res.StatusCode() != 200 || string(res.Body()) != string(pixel.GIF) {
			t.Fatalf("hit %d: %d %q", i, res.StatusCode(), res.Body())
		}
		if !strings.Contains(string(res.Header.Peek("Cache-Control")), "no-store") {
			t.Fatal("GIF must not be cached")
		}
	}
	evs := e.events(t)
	if len(evs) != n {
		t.Fatalf("%d events stored, want %d", len(evs), n)
	}
	ev := evs[0]
	if ev.Kind != event.KindSearch || ev.Site != "s1" || ev.URL != "https://pub.example/x" || ev.Query != "plumber" ||
		len(ev.Categories) != 2 || ev.Lang != "ru" || ev.Device.Type != "desktop" || ev.Device.OS != "Windows" ||
		ev.IP != "127.0.0.0" || len(ev.Visitor) != pixel.VisitorIDLen || !ev.Consent.Allow(consent.Personalize) {
		t.Errorf("event fields: %+v", ev)
	}
	if e.pub.Stats().Dropped != 0 {
		t.Error("events dropped under normal load")
	}
}

func TestConsent(t *testing.T) {
	e := startEdge(t, pixel.Options{})
	tc := grantAll(t)
	cases := []struct {
		name       string
		h          hit
		wantCookie bool
	}{
		{"gdpr without consent", hit{query: "site=a&gdpr=1"}, false},
		{"gdpr with garbage consent", hit{query: "site=b&gdpr=1&gdpr_consent=%FF%FE..garbage"}, false},
		{"gdpr with consent", hit{query: "site=c&gdpr=1&gdpr_consent=" + tc}, true},
		{"gdpr with consent in cookie", hit{query: "site=d&gdpr=1", headers: map[string]string{"Cookie": "euconsent-v2=" + tc}}, true},
		{"outside gdpr", hit{query: "site=e"}, true},
		{"gpc", hit{query: "site=f", headers: map[string]string{"Sec-GPC": "1"}}, false},
		{"gpc not exactly 1", hit{query: "site=g", headers: map[string]string{"Sec-GPC": "true"}}, true},
		{"opt-out cookie", hit{query: "site=h", headers: map[string]string{"Cookie": consent.OptOutCookie + "=1"}}, false},
		{"opt-out cookie with consent", hit{query: "site=i&gdpr=1&gdpr_consent=" + tc, headers: map[string]string{"Cookie": consent.OptOutCookie + "=1"}}, false},
	}
	for _, c := range cases {
		res := e.do(t, c.h)
		got := len(res.Header.PeekCookie(pixel.CookieName)) > 0
		if got != c.wantCookie {
			t.Errorf("%s: cookie set %v, want %v", c.name, got, c.wantCookie)
		}
		if res.StatusCode() != 200 {
			t.Errorf("%s: status %d", c.name, res.StatusCode())
		}
	}
	bySite := map[string]event.Event{}
	for _, ev := range e.events(t) {
		bySite[ev.Site] = ev
	}
	for i, c := range cases {
		site := string(rune('a' + i))
		ev, ok := bySite[site]
		if !ok {
			t.Errorf("%s: no event", c.name)
			continue
		}
		if (ev.Visitor != "") != c.wantCookie {
			t.Errorf("%s: visitor %q in event, want present=%v", c.name, ev.Visitor, c.wantCookie)
		}
		if !c.wantCookie && (ev.Consent.Allow(consent.BuildProfile) || ev.Consent.Allow(consent.Personalize)) {
			t.Errorf("%s: snapshot %v allows profiling", c.name, ev.Consent.Names())
		}
	}
}

func TestExistingCookieIsKept(t *testing.T) {
	e := startEdge(t, pixel.Options{})
	const id = "AbCdEfGhIjKlMnOpQrStUv"
	res := e.do(t, hit{query: "site=x", headers: map[string]string{"Cookie": "uid=" + id}})
	if len(res.Header.PeekCookie(pixel.CookieName)) != 0 {
		t.Error("a valid cookie must not be rewritten")
	}
	res = e.do(t, hit{query: "site=y", headers: map[string]string{"Cookie": "uid=<script>"}})
	if len(res.Header.PeekCookie(pixel.CookieName)) == 0 {
		t.Error("a garbage cookie must be replaced")
	}
	// Different visitors fall in different partitions, so the stream's order
	// is not the requests' order: look the events up by site.
	bySite := map[string]string{}
	for _, ev := range e.events(t) {
		bySite[ev.Site] = ev.Visitor
	}
	if len(bySite) != 2 || bySite["x"] != id || !pixel.ValidVisitorID([]byte(bySite["y"])) {
		t.Errorf("visitors by site %+v", bySite)
	}
}

func TestBadInputStillGetsTheGIF(t *testing.T) {
	e := startEdge(t, pixel.Options{}) // the publisher's guard knows oncology
	for _, h := range []hit{
		{query: "u=" + strings.Repeat("a", 20000)},
		{query: "q=%FF%FE%FD&site=%C0%AF"},
		{query: "e=impression"},
		{query: "e=click&site=forged"},
		{query: "v=NaN&v=1e400"},
		{query: "c=" + strings.Repeat("x,", 5000)},
		{query: "gdpr=1&gdpr_consent=" + strings.Repeat("A", 100000)},
		{query: "site=s", headers: map[string]string{"Cookie": strings.Repeat("uid=;", 500)}},
		{query: "site=s", headers: map[string]string{"X-Forwarded-For": "garbage, ::::, 1.2.3.4"}},
		{query: "q=oncology+clinic&u=https%3A%2F%2Fh.example%2Foncology%2Fx&site=sens"},
		{method: "POST", body: "site=beacon&e=conversion&v=12.5"},
		{method: "POST", body: strings.Repeat("z", 100000)},
	} {
		res := e.do(t, h)
		if h.method == "POST" {
			if res.StatusCode() != 204 {
				t.Errorf("beacon %q: %d", h.body[:min(20, len(h.body))], res.StatusCode())
			}
			continue
		}
		if res.StatusCode() != 200 || string(res.Body()) != string(pixel.GIF) {
			t.Errorf("%.40q: %d", h.query, res.StatusCode())
		}
	}
	for _, ev := range e.events(t) {
		if ev.Kind == event.KindImpression || ev.Kind == event.KindClick {
			t.Errorf("the pixel stored a %s", ev.Kind)
		}
		if len(ev.URL) > pixel.MaxURL || len(ev.Categories) > pixel.MaxCategories {
			t.Errorf("limits not applied: %d %d", len(ev.URL), len(ev.Categories))
		}
		if ev.Site == "sens" && (ev.Query != "" || ev.URL != "https://h.example") {
			t.Errorf("sensitive signal stored: %q %q", ev.Query, ev.URL)
		}
		if ev.Site == "beacon" && (ev.Kind != event.KindConversion || ev.Value != 12.5) {
			t.Errorf("beacon event %+v", ev)
		}
	}
}

func TestBotsAreCountedNotStored(t *testing.T) {
	e := startEdge(t, pixel.Options{})
	e.do(t, hit{query: "site=a", headers: map[string]string{"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}})
	e.do(t, hit{query: "site=b", headers: map[string]string{"Sec-Purpose": "prefetch"}})
	if evs := e.events(t); len(evs) != 0 {
		t.Errorf("bots stored: %+v", evs)
	}
}

// The hit that issues a visitor id says so in its event (no record is made
// from it); the hits that send the cookie back do not. With the opt-out
// cookie the pixel neither reads nor writes the visitor id.
func TestNewVisitorAndOptOut(t *testing.T) {
	e := startEdge(t, pixel.Options{Cookies: pixel.Cookies{Secure: true}})
	const id = "AbCdEfGhIjKlMnOpQrStUv"
	res := e.do(t, hit{query: "site=first"})
	var c fasthttp.Cookie
	c.SetKey(pixel.CookieName)
	if !res.Header.Cookie(&c) || !c.Secure() || c.SameSite() != fasthttp.CookieSameSiteNoneMode || !c.HTTPOnly() {
		t.Errorf("first hit: visitor cookie %q, want Secure; SameSite=None; HttpOnly", c.String())
	}
	if res = e.do(t, hit{query: "site=back", headers: map[string]string{"Cookie": "uid=" + id}}); len(res.Header.PeekCookie(pixel.CookieName)) != 0 {
		t.Error("returning visitor: cookie rewritten")
	}
	if res = e.do(t, hit{query: "site=out", headers: map[string]string{"Cookie": "uid=" + id + "; adsyn_optout=1"}}); len(res.Header.PeekCookie(pixel.CookieName)) != 0 {
		t.Error("opted out: a visitor cookie was written")
	}
	if res = e.do(t, hit{query: "site=out-fresh", headers: map[string]string{"Cookie": "adsyn_optout=1"}}); len(res.Header.PeekCookie(pixel.CookieName)) != 0 {
		t.Error("opted out, no id: a visitor cookie was written")
	}
	bySite := map[string]event.Event{}
	for _, ev := range e.events(t) {
		bySite[ev.Site] = ev
	}
	if ev := bySite["first"]; !ev.NewVisitor || !pixel.ValidVisitorID([]byte(ev.Visitor)) {
		t.Errorf("first hit: %+v, want a new visitor", ev)
	}
	if ev := bySite["back"]; ev.NewVisitor || ev.Visitor != id {
		t.Errorf("returning hit: %+v", ev)
	}
	for _, site := range []string{"out", "out-fresh"} {
		if ev, ok := bySite[site]; !ok || ev.Visitor != "" || ev.NewVisitor || ev.Consent.Allow(consent.StoreOnDevice) {
			t.Errorf("opted out (%s): %+v", site, ev)
		}
	}
}
