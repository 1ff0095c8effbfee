package cookie_test

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/cookie"
)

// serve runs p's writers behind a real fasthttp server on loopback:
// /visitor, /delete and /optout each write their cookie.
func serve(t *testing.T, p cookie.Policy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/visitor":
			p.SetVisitor(ctx, []byte("AbCdEfGhIjKlMnOpQrStUv"))
		case "/delete":
			p.DeleteVisitor(ctx)
		case "/optout":
			p.SetOptOut(ctx)
		}
		if p.OverTLS(ctx) {
			ctx.Response.Header.Set("X-Test-TLS", "1")
		}
	}}
	go s.Serve(ln) //nolint:errcheck // ends with Shutdown
	t.Cleanup(func() { _ = s.Shutdown() })
	return "http://" + ln.Addr().String()
}

// get returns the cookie the path set, parsed by net/http (an outside parser).
func get(t *testing.T, base, path, proto string) (*http.Cookie, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	if proto != "" {
		req.Header.Set("X-Forwarded-Proto", proto)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	raw := res.Header.Values("Set-Cookie")
	if len(raw) != 1 {
		t.Fatalf("%s: %d Set-Cookie headers: %q", path, len(raw), raw)
	}
	c, err := http.ParseSetCookie(raw[0])
	if err != nil {
		t.Fatalf("%s: %q: %v", path, raw[0], err)
	}
	return c, raw[0]
}

func TestAttributes(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	elsewhere := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name   string
		p      cookie.Policy
		proto  string // X-Forwarded-Proto sent
		secure bool   // Secure; SameSite=None, else SameSite=Lax
		part   bool   // the visitor id is Partitioned
	}{
		{"plain http", cookie.Policy{}, "", false, false},
		{"--secure-cookies", cookie.Policy{Secure: true}, "", true, false},
		{"tls at a trusted proxy", cookie.Policy{TrustedProxies: loopback}, "https", true, false},
		{"trusted proxy, plain", cookie.Policy{TrustedProxies: loopback}, "http", false, false},
		{"proto from an untrusted client", cookie.Policy{TrustedProxies: elsewhere}, "https", false, false},
		{"proto without trusted proxies", cookie.Policy{}, "https", false, false},
		{"partitioned, secure", cookie.Policy{Secure: true, Partitioned: true}, "", true, true},
		{"partitioned over plain http", cookie.Policy{Partitioned: true}, "", false, false},
		{"domain", cookie.Policy{Secure: true, Domain: "ads.example"}, "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := serve(t, tc.p)
			for _, path := range []string{"/visitor", "/delete", "/optout"} {
				c, raw := get(t, base, path, tc.proto)
				wantSite := http.SameSiteLaxMode
				if tc.secure {
					wantSite = http.SameSiteNoneMode
				}
				if c.Secure != tc.secure || c.SameSite != wantSite || !c.HttpOnly || c.Path != "/" {
					t.Errorf("%s: %q: want secure=%v samesite=%v, HttpOnly, Path=/", path, raw, tc.secure, wantSite)
				}
				wantPart := tc.part && path != "/optout" // the opt-out must hold on every site
				if got := strings.Contains(raw, "; Partitioned"); got != wantPart {
					t.Errorf("%s: %q: partitioned %v, want %v", path, raw, got, wantPart)
				}
				if c.Domain != tc.p.Domain {
					t.Errorf("%s: domain %q, want %q", path, c.Domain, tc.p.Domain)
				}
				switch path {
				case "/visitor":
					if c.Name != "uid" || c.Value != "AbCdEfGhIjKlMnOpQrStUv" || c.MaxAge != 395*24*3600 {
						t.Errorf("visitor cookie %q", raw)
					}
				case "/delete":
					if c.Name != "uid" || c.Value != "" || c.MaxAge >= 0 {
						t.Errorf("deleting cookie %q does not expire uid", raw)
					}
				case "/optout":
					if c.Name != "adsyn_optout" || c.Value != "1" || c.MaxAge != 395*24*3600 {
						t.Errorf("opt-out cookie %q", raw)
					}
				}
			}
		})
	}
}

func TestOptedOut(t *testing.T) {
	for cookieHeader, want := range map[string]bool{
		"adsyn_optout=1":                true,
		"uid=x; adsyn_optout=1":         true,
		"adsyn_optout=0":                false,
		"adsyn_optout=11":               false,
		"":                              false,
		"uid=AbCdEfGhIjKlMnOpQrStUv":    false,
		"adsyn_optout=1; adsyn_optout=": true,
	} {
		var ctx fasthttp.RequestCtx
		if cookieHeader != "" {
			ctx.Request.Header.Set("Cookie", cookieHeader)
		}
		if got := cookie.OptedOut(&ctx); got != want {
			t.Errorf("Cookie: %q: opted out %v, want %v", cookieHeader, got, want)
		}
	}
}

// TestHeaderBytes holds the Set-Cookie headers the writers append
// themselves to the bytes fasthttp.Cookie serialises for the same
// attributes (what they were written with before), for every policy and
// request that changes them, and for the values and domains fasthttp
// rewrites. Writing a cookie twice replaces it, as fasthttp's SetCookie does.
func TestHeaderBytes(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	id := []byte("AbCdEfGhIjKlMnOpQrStUv")
	for _, p := range []cookie.Policy{
		{}, {Secure: true}, {Partitioned: true}, {Secure: true, Partitioned: true},
		{Domain: "ads.example"}, {Secure: true, Partitioned: true, Domain: "ads.example"},
		{TrustedProxies: trusted}, {Partitioned: true, TrustedProxies: trusted},
		{Domain: "ads.example;x=1"}, {Secure: true, Domain: "ads.example\r\nX-Evil: 1"},
	} {
		for _, proto := range []string{"", "https"} {
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 5000}, nil)
			if proto != "" {
				ctx.Request.Header.Set("X-Forwarded-Proto", proto)
			}
			secure := p.Secure || proto == "https" && len(p.TrustedProxies) > 0
			for _, w := range []struct {
				name   string
				write  func()
				cookie string
				value  []byte
				maxAge int  // seconds; -1 expires
				part   bool // the policy's Partitioned applies
				twice  bool // written on top of an earlier one
			}{
				{"visitor", func() { p.SetVisitor(&ctx, id) }, "uid", id, 395 * 24 * 3600, true, false},
				{"delete", func() { p.DeleteVisitor(&ctx) }, "uid", nil, -1, true, false},
				{"opt-out", func() { p.SetOptOut(&ctx) }, "adsyn_optout", []byte("1"), 395 * 24 * 3600, false, false},
				{"odd value", func() { p.SetVisitor(&ctx, []byte("a;b\r\nc")) }, "uid", []byte("a;b\r\nc"), 395 * 24 * 3600, true, false},
				{"set after delete", func() { p.DeleteVisitor(&ctx); p.SetVisitor(&ctx, id) }, "uid", id, 395 * 24 * 3600, true, true},
			} {
				ctx.Response.Reset()
				w.write()
				got := ctx.Response.Header.String()

				var want fasthttp.Response
				if w.twice {
					want.Header.SetCookie(serialised(p, "uid", nil, -1, secure, p.Partitioned))
				}
				want.Header.SetCookie(serialised(p, w.cookie, w.value, w.maxAge, secure, w.part && p.Partitioned))
				if got != want.Header.String() {
					t.Errorf("%+v, proto %q, %s:\n got %q\nwant %q", p, proto, w.name, got, want.Header.String())
				}
			}
		}
	}
}

// serialised is the cookie as fasthttp.Cookie makes it from the policy's
// attributes.
func serialised(p cookie.Policy, name string, value []byte, maxAge int, secure, partitioned bool) *fasthttp.Cookie {
	return serialisedInto(new(fasthttp.Cookie), p, name, value, maxAge, secure, partitioned)
}

func serialisedInto(c *fasthttp.Cookie, p cookie.Policy, name string, value []byte, maxAge int, secure, partitioned bool) *fasthttp.Cookie {
	c.SetKey(name)
	c.SetValueBytes(value)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	if p.Domain != "" {
		c.SetDomain(p.Domain)
	}
	if maxAge < 0 {
		c.SetExpire(fasthttp.CookieExpireDelete)
	}
	c.SetMaxAge(maxAge)
	if secure {
		c.SetSecure(true)
		c.SetSameSite(fasthttp.CookieSameSiteNoneMode)
		c.SetPartitioned(partitioned)
	} else {
		c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	}
	return c
}
