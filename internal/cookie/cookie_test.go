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
