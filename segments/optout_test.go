package segments

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/cookie"
)

func TestOptOut(t *testing.T) {
	srv := bustest.StartServer(t)
	conn := srv.Connect(t)
	s := newStore(t, conn)
	other := newStore(t, srv.Connect(t)) // another edge process
	h, err := OptOut(s, &cookie.Policy{}, 720*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln := fasthttputil.NewInmemoryListener()
	defer ln.Close()
	go func() { _ = fasthttp.Serve(ln, h) }()
	client := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}

	putRecord(t, conn, Record{Visitor: "vis-1", Events: 5})
	for _, st := range []*KVStore{s, other} {
		warm(t, st, "vis-1")
	}

	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.SetRequestURI("http://edge.example/optout")
	req.Header.SetCookie("uid", "vis-1")
	if err := client.Do(req, res); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode() != 200 {
		t.Fatalf("status %d body %q", res.StatusCode(), res.Body())
	}
	// The page says what was deleted, what is kept for how long, and how to undo it.
	for _, want := range []string{"You have opted out", "What we deleted", "interest profile held under this browser", "What we keep", "30 days after each happened", "How to undo it", "adsyn_optout"} {
		if !strings.Contains(string(res.Body()), want) {
			t.Errorf("the page does not say %q:\n%s", want, res.Body())
		}
	}
	var c fasthttp.Cookie
	c.SetKey(consent.OptOutCookie)
	if !res.Header.Cookie(&c) {
		t.Fatal("no opt-out cookie")
	}
	if string(c.Value()) != "1" || !consent.OptedOut(c.Value()) || !c.HTTPOnly() || c.MaxAge() < 13*28*24*3600 || c.SameSite() != fasthttp.CookieSameSiteLaxMode || c.Secure() {
		t.Errorf("cookie %s", c.String())
	}
	var uid fasthttp.Cookie
	uid.SetKey("uid")
	if !res.Header.Cookie(&uid) || uid.Expire().After(time.Now()) {
		t.Errorf("the visitor cookie is not expired: %s", uid.String())
	}
	if _, _, ok := readRecord(t, conn, "vis-1"); ok {
		t.Error("record not deleted")
	}
	if _, ok := s.Cached("vis-1"); ok {
		t.Error("cache entry not deleted")
	}
	eventually(t, 5*time.Second, "the other edge's cache", func() bool { _, ok := other.Cached("vis-1"); return !ok })

	// Without a visitor id nothing was deleted, and the page says so.
	req.Header.DelAllCookies()
	if err := client.Do(req, res); err != nil {
		t.Fatal(err)
	}
	if body := string(res.Body()); res.StatusCode() != 200 || !strings.Contains(body, "Nothing: this browser sent us no visitor id") || strings.Contains(body, "interest profile held under") {
		t.Errorf("no visitor: %d %q", res.StatusCode(), body)
	}

	// ?format=none answers 204; no visitor cookie is fine.
	req.SetRequestURI("http://edge.example/optout?format=none")
	if err := client.Do(req, res); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode() != 204 || len(res.Body()) != 0 {
		t.Errorf("format=none: %d %q", res.StatusCode(), res.Body())
	}
	req.Header.SetMethod("POST")
	if err := client.Do(req, res); err != nil || res.StatusCode() != 405 {
		t.Errorf("POST: %d %v", res.StatusCode(), err)
	}
}

// tlsConn makes a RequestCtx report TLS.
type tlsConn struct{ net.Conn }

func (tlsConn) Handshake() error { return nil }
func (tlsConn) ConnectionState() tls.ConnectionState {
	return tls.ConnectionState{HandshakeComplete: true}
}

func TestOptOutCookieOverTLS(t *testing.T) {
	conn := bustest.Start(t)
	h, err := OptOut(newStore(t, conn), &cookie.Policy{Domain: "ads.example"}, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var ctx fasthttp.RequestCtx
	ctx.Init2(tlsConn{a}, nil, false)
	ctx.Request.SetRequestURI("/optout")
	h(&ctx)
	var c fasthttp.Cookie
	c.SetKey(consent.OptOutCookie)
	if !ctx.Response.Header.Cookie(&c) {
		t.Fatal("no cookie")
	}
	if !c.Secure() || c.SameSite() != fasthttp.CookieSameSiteNoneMode || string(c.Domain()) != "ads.example" {
		t.Errorf("cookie over TLS: %s", c.String())
	}
}

// Under --secure-cookies the opt-out and the deleting cookie are Secure;
// SameSite=None over plain HTTP too, so a publisher's page sends the
// opt-out back to the edge (P3).
func TestOptOutCookieSecure(t *testing.T) {
	conn := bustest.Start(t)
	h, err := OptOut(newStore(t, conn), &cookie.Policy{Secure: true, Partitioned: true}, 720*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/optout")
	ctx.Request.Header.SetCookie("uid", "AbCdEfGhIjKlMnOpQrStUv")
	h(&ctx)
	for _, name := range []string{consent.OptOutCookie, "uid"} {
		var c fasthttp.Cookie
		c.SetKey(name)
		if !ctx.Response.Header.Cookie(&c) {
			t.Fatalf("no %s cookie", name)
		}
		if !c.Secure() || c.SameSite() != fasthttp.CookieSameSiteNoneMode {
			t.Errorf("%s: %s", name, c.String())
		}
		if c.Partitioned() != (name == "uid") {
			t.Errorf("%s: partitioned %v: %s", name, c.Partitioned(), c.String())
		}
	}
}

func TestOptOutPageDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{720 * time.Hour: "30 days", 24 * time.Hour: "1 day", 36 * time.Hour: "36 hours", time.Hour: "1 hour"} {
		if got := duration(d); got != want {
			t.Errorf("duration(%s) = %q, want %q", d, got, want)
		}
	}
}
