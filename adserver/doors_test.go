package adserver

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/cookie"
	"github.com/adsyn/adsyn/internal/event"
)

func allowAll(*fasthttp.RequestCtx) consent.Set { return consent.All }

// Site s1 lists pub.example: its pages and its subdomains' get credentialed
// CORS; any other origin gets an answer without credentials, and the edge
// uses no visitor id for it (neither the cookie nor u=).
func TestAdCORS(t *testing.T) {
	for _, tc := range []struct {
		name, origin, query string
		secure              bool // the edge's cookies are Secure
		cred                bool
	}{
		{"registered", "https://pub.example", "site=s1&slot=side", false, true},
		{"registered, with port", "https://pub.example:8443", "site=s1&slot=side", false, true},
		{"subdomain", "https://www.pub.example", "site=s1&slot=side", false, true},
		{"plain http page, plain http edge", "http://pub.example", "site=s1&slot=side", false, true},
		{"plain http page, secure edge", "http://pub.example", "site=s1&slot=side", true, false},
		{"suffix without a dot", "https://evilpub.example", "site=s1&slot=side", false, false},
		{"registered name as a subdomain", "https://pub.example.evil.example", "site=s1&slot=side", false, false},
		{"null", "null", "site=s1&slot=side", false, false},
		{"another site's page", "https://pub.example", "site=s2&slot=side", false, false},
		{"unregistered, visitor in u", "https://evil.example", "site=s1&slot=side&u=v1", false, false},
		{"uppercase", "https://PUB.example", "site=s1&slot=side", false, false}, // browsers serialize origins in lowercase
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEdgeEnv(t, testSnap(camp("c1")), WithConsent(allowAll), WithCookies(&cookie.Policy{Secure: tc.secure}))
			res, _ := get(t, env.base+"/ad?"+tc.query, "Origin", tc.origin, "Cookie", "uid=v1")
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			acao, acac := res.Header.Get("Access-Control-Allow-Origin"), res.Header.Get("Access-Control-Allow-Credentials")
			if res.Header.Get("Vary") != "Origin" {
				t.Errorf("Vary %q", res.Header.Get("Vary"))
			}
			imps := env.pub.kinds(event.KindImpression)
			if len(imps) != 1 {
				t.Fatalf("%d impressions", len(imps))
			}
			if tc.cred {
				if acao != tc.origin || acac != "true" || imps[0].Visitor != "v1" {
					t.Errorf("ACAO %q ACAC %q visitor %q: want credentialed", acao, acac, imps[0].Visitor)
				}
				return
			}
			if acao != "*" || acac != "" {
				t.Errorf("ACAO %q ACAC %q: want * without credentials", acao, acac)
			}
			if imps[0].Visitor != "" {
				t.Errorf("visitor %q used for an unregistered origin", imps[0].Visitor)
			}
		})
	}

	// The tag's credentialed try from an unregistered page is refused
	// before any decision, so its retry without cookies is the one impression.
	env := newEdgeEnv(t, testSnap(camp("c1")), WithConsent(allowAll))
	res, _ := get(t, env.base+"/ad?site=s1&slot=side&cred=1", "Origin", "https://evil.example", "Cookie", "uid=v1")
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Credentials") != "" || len(env.pub.kinds(event.KindImpression)) != 0 {
		t.Fatalf("credentialed try from an unregistered page: %d %v, %d impressions", res.StatusCode, res.Header, len(env.pub.kinds(event.KindImpression)))
	}
	if got := counter(env.reg, `adsyn_ad_requests_total{result="origin_not_registered"}`); got != "1" {
		t.Errorf("metric %q", got)
	}
	if code, ad := env.ad(t, "site=s1&slot=side&cred=1", "Origin", "https://pub.example", "Cookie", "uid=v1"); code != 200 || ad.Campaign != "c1" {
		t.Fatalf("credentialed try from a registered page: %d", code)
	}
}

func TestAdPreflight(t *testing.T) {
	env := newEdgeEnv(t, testSnap(camp("c1")))
	for origin, cred := range map[string]bool{"https://pub.example": true, "https://evil.example": false, "null": false} {
		req, _ := http.NewRequest("OPTIONS", env.base+"/ad?site=s1&slot=side", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		h := res.Header
		if res.StatusCode != 204 || h.Get("Access-Control-Allow-Methods") != "GET" || h.Get("Vary") != "Origin" {
			t.Errorf("%s: %d %v", origin, res.StatusCode, h)
		}
		if got := h.Get("Access-Control-Allow-Credentials") == "true" && h.Get("Access-Control-Allow-Origin") == origin; got != cred {
			t.Errorf("%s: credentialed %v, want %v (%v)", origin, got, cred, h)
		}
	}
	if n := len(env.pub.kinds(event.KindImpression)); n != 0 {
		t.Errorf("a preflight made %d impressions", n)
	}
}

// The opt-out cookie holds on /ad, /imp and /click whatever the consent
// source says: no visitor id read, none in the events, nothing personalized.
func TestOptOutHoldsAtTheAdDoors(t *testing.T) {
	seg := camp("c-seg", func(c *Campaign) { c.CPM = 9; c.Targeting.Segments.Any = []string{"cycling"} })
	env := newEdgeEnv(t, testSnap(camp("c1"), seg), WithSegments(memRecords{"v1": record("cycling")}), WithConsent(allowAll))

	code, ad := env.ad(t, "site=s1&slot=side", "Cookie", "uid=v1")
	if code != 200 || ad.Campaign != "c-seg" {
		t.Fatalf("before the opt-out: %d %q, want the personalized c-seg", code, ad.Campaign)
	}
	// An ad served before the opt-out, viewed and clicked after it.
	optedOut := "uid=v1; adsyn_optout=1"
	if res, _ := get(t, ad.Imp, "Cookie", optedOut); res.StatusCode != 204 {
		t.Fatalf("imp %d", res.StatusCode)
	}
	if res, _ := get(t, ad.Click, "Cookie", optedOut); res.StatusCode != 302 {
		t.Fatalf("click %d", res.StatusCode)
	}
	for _, k := range []event.Kind{event.KindViewable, event.KindClick} {
		evs := env.pub.kinds(k)
		if len(evs) != 1 || evs[0].Visitor != "" || evs[0].Consent.Allow(consent.StoreOnDevice) || evs[0].Consent.Allow(consent.Personalize) || evs[0].Consent.Allow(consent.BuildProfile) {
			t.Errorf("%s after the opt-out: %+v", k, evs)
		}
	}
	// A new ad: contextual, no visitor, in the event or the tokens.
	for _, q := range []string{"site=s1&slot=side", "site=s1&slot=side&u=v1"} {
		code, ad = env.ad(t, q, "Cookie", optedOut, "Origin", "https://pub.example")
		if code != 200 || ad.Campaign != "c1" {
			t.Fatalf("%s after the opt-out: %d %q, want the contextual c1", q, code, ad.Campaign)
		}
		for _, u := range []string{ad.Click, ad.Imp} {
			tok, err := env.e.sign.Load().Parse([]byte(u[strings.Index(u, "t=")+2:]), map[bool]TokenKind{true: TokenClick, false: TokenImpression}[u == ad.Click])
			if err != nil || tok.Visitor != "" {
				t.Errorf("token after the opt-out: %+v %v", tok, err)
			}
		}
	}
	imps := env.pub.kinds(event.KindImpression)
	if len(imps) != 3 || imps[1].Visitor != "" || imps[2].Visitor != "" || imps[2].Consent.Allow(consent.Personalize) {
		t.Errorf("impressions %+v", imps)
	}
	// GPC on the click counts as an opt-out too.
	if res, _ := get(t, ad.Click, "Sec-GPC", "1"); res.StatusCode != 302 {
		t.Fatalf("click %d", res.StatusCode)
	}
}

// A token decoded every way shows no visitor id; tampering and another
// key are refused (P8).
func TestTokenHidesVisitor(t *testing.T) {
	const visitor = "AbCdEfGhIjKlMnOpQrStUv"
	raw, err := base64.RawURLEncoding.DecodeString(visitor)
	if err != nil {
		t.Fatal(err)
	}
	s := mustSigner(testKey)
	for _, kind := range []TokenKind{TokenClick, TokenImpression} {
		tok := Token{Kind: kind, Issued: 1764000000, Imp: event.NewID(), Consent: consent.All, Campaign: "c1", Creative: "c1-cr",
			Site: "s1", Slot: "side", Visitor: visitor, Landing: "https://example.com/x"}
		text := s.Append(nil, &tok)
		if len(text) > 200 {
			t.Errorf("token of %d bytes; keep it compact", len(text))
		}
		for _, dec := range decodings(string(text)) {
			for _, secret := range [][]byte{[]byte(visitor), raw, []byte(strings.ToLower(visitor)), []byte(visitor[:8]), []byte(visitor[14:])} {
				if bytes.Contains(dec, secret) {
					t.Fatalf("the visitor id %q shows in a decoding of %s", secret, text)
				}
			}
		}
		got, err := s.Parse(text, kind)
		if err != nil || got.Visitor != visitor || got.Campaign != "c1" {
			t.Fatalf("round trip: %+v %v", got, err)
		}
		// Tampering anywhere, the encrypted visitor included, is refused.
		body, _ := b64.DecodeString(string(text))
		for i := range body {
			b := bytes.Clone(body)
			b[i] ^= 0x20
			if _, err := s.Parse(b64.AppendEncode(nil, b), kind); err != ErrBadToken {
				t.Fatalf("byte %d altered: %v", i, err)
			}
		}
		other := mustSigner([]byte("another key, 32 bytes long......"))
		if _, err := other.Parse(text, kind); err != ErrBadToken {
			t.Fatalf("another key: %v", err)
		}
		// Two impressions of one visitor do not share the visitor's bytes.
		tok.Imp = event.NewID()
		again := s.Append(nil, &tok)
		a, _ := b64.DecodeString(string(text))
		b, _ := b64.DecodeString(string(again))
		at := tokenHead + 4 + len("c1"+"c1-cr"+"s1"+"side") + 1 // past the four short fields and the visitor's length
		if bytes.Contains(b, a[at:at+len(visitor)]) {
			t.Fatal("one visitor's ciphertext repeats across impressions")
		}
	}
}

// decodings returns text decoded every way a reader might try: base64 in
// both alphabets, padded or not, from every offset, and hex.
func decodings(text string) [][]byte {
	out := [][]byte{[]byte(text)}
	if u, err := url.QueryUnescape(text); err == nil {
		out = append(out, []byte(u))
	}
	std := strings.NewReplacer("-", "+", "_", "/").Replace(text)
	for off := range min(4, len(text)) {
		for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding} {
			src := text[off:]
			if enc == base64.RawStdEncoding {
				src = std[off:]
			}
			for cut := 0; cut < 4; cut++ { // a trailing partial quantum fails a strict decode
				if len(src)-cut <= 0 {
					break
				}
				if b, err := enc.DecodeString(src[:len(src)-cut]); err == nil {
					out = append(out, b)
				}
			}
		}
	}
	if b, err := hex.DecodeString(text); err == nil {
		out = append(out, b)
	}
	return out
}

// /ad's answer, body and headers, never shows the visitor id.
func TestAdAnswerHidesVisitor(t *testing.T) {
	const visitor = "AbCdEfGhIjKlMnOpQrStUv"
	env := newEdgeEnv(t, testSnap(camp("c1")), WithConsent(allowAll))
	for _, f := range []string{"json", "html"} {
		res, body := get(t, env.base+"/ad?site=s1&slot=side&fmt="+f, "Cookie", "uid="+visitor, "Origin", "https://pub.example")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", f, res.StatusCode)
		}
		var all strings.Builder
		all.WriteString(body)
		for k, v := range res.Header {
			all.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		for _, tok := range strings.Split(all.String(), "t=")[1:] {
			end := strings.IndexAny(tok, `"&<\ `)
			if end < 0 {
				end = len(tok)
			}
			for _, dec := range decodings(tok[:end]) {
				if bytes.Contains(dec, []byte(visitor)) {
					t.Fatalf("%s: the visitor id decodes out of a token", f)
				}
			}
		}
		if strings.Contains(all.String(), visitor) {
			t.Fatalf("%s: the visitor id is in the answer", f)
		}
	}
	if imps := env.pub.kinds(event.KindImpression); len(imps) != 2 || imps[0].Visitor != visitor {
		t.Fatalf("the visitor was not used at all: %+v", imps)
	}
}

// fmt=html runs the marketer's HTML in an opaque origin.
func TestAdHTMLSandboxHeaders(t *testing.T) {
	env := newEdgeEnv(t, testSnap(camp("c1")))
	res, _ := get(t, env.base+"/ad?site=s1&slot=side&fmt=html")
	if got := res.Header.Get("Content-Security-Policy"); got != "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox" {
		t.Errorf("CSP %q", got)
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("nosniff missing: %v", res.Header)
	}
}

// Click and impression URLs say https only when the request came over TLS:
// X-Forwarded-Proto counts from a trusted proxy only.
func TestTrackingURLScheme(t *testing.T) {
	loopback := &cookie.Policy{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	elsewhere := &cookie.Policy{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	for _, tc := range []struct {
		name   string
		p      *cookie.Policy
		proto  string
		scheme string
	}{
		{"no proxy header", loopback, "", "http://"},
		{"trusted proxy says https", loopback, "https", "https://"},
		{"untrusted client says https", elsewhere, "https", "http://"},
		{"no trusted proxies", &cookie.Policy{}, "https", "http://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEdgeEnv(t, testSnap(camp("c1")), WithCookies(tc.p))
			hdr := []string{}
			if tc.proto != "" {
				hdr = append(hdr, "X-Forwarded-Proto", tc.proto)
			}
			code, ad := env.ad(t, "site=s1&slot=side", hdr...)
			host := strings.TrimPrefix(env.base, "http://")
			if code != 200 || !strings.HasPrefix(ad.Click, tc.scheme+host+"/click?t=") || !strings.HasPrefix(ad.Imp, tc.scheme+host+"/imp?t=") {
				t.Fatalf("%d click %q imp %q, want %s", code, ad.Click, ad.Imp, tc.scheme)
			}
		})
	}
}

// /ad signs its two tokens at once (AppendPair): each is byte for byte the
// token Append signs alone for its kind, and each is refused as the other.
func TestTokenPair(t *testing.T) {
	s := mustSigner(testKey)
	for _, tok := range []Token{
		{Issued: 1764000000, Imp: event.NewID(), Consent: consent.All, Campaign: "c1", Creative: "c1-cr",
			Site: "s1", Slot: "side", Visitor: "AbCdEfGhIjKlMnOpQrStUv", Landing: "https://example.com/x"},
		{Issued: 1764000001, Imp: event.NewID(), Campaign: "c2", Creative: "c2-cr", Landing: "https://example.com/" + strings.Repeat("y", maxURL)},
	} {
		click, imp := s.AppendPair([]byte("https://ads.example/click?t="), []byte("https://ads.example/imp?t="), &tok)
		for _, c := range []struct {
			kind, other TokenKind
			prefix      string
			got         []byte
		}{{TokenClick, TokenImpression, "https://ads.example/click?t=", click}, {TokenImpression, TokenClick, "https://ads.example/imp?t=", imp}} {
			one := tok
			one.Kind = c.kind
			if want := s.Append([]byte(c.prefix), &one); !bytes.Equal(c.got, want) {
				t.Fatalf("kind %d: pair gave %s, Append %s", c.kind, c.got, want)
			}
			text := c.got[len(c.prefix):]
			got, err := s.Parse(text, c.kind)
			if err != nil || got.Visitor != tok.Visitor || got.Campaign != tok.Campaign || got.Imp != tok.Imp {
				t.Fatalf("kind %d round trip: %+v %v", c.kind, got, err)
			}
			if c.kind == TokenClick && got.Landing != tok.Landing[:min(len(tok.Landing), maxURL)] {
				t.Fatalf("landing %q", got.Landing)
			}
			if _, err := s.Parse(text, c.other); err != ErrBadToken {
				t.Fatalf("a kind %d token read as kind %d: %v", c.kind, c.other, err)
			}
		}
	}
}
