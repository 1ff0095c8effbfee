package adserver

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
)

// FuzzToken: any text either fails as ErrBadToken or is a token we signed;
// a signed token survives the round trip and fails once any byte changes.
func FuzzToken(f *testing.F) {
	s := mustSigner(testKey)
	good := &Token{Kind: TokenClick, Issued: 1717502400, Imp: event.NewID(), Consent: consent.All,
		Campaign: "c1", Creative: "c1-cr", Site: "s1", Slot: "side", Visitor: "v1", Landing: "https://example.com/x?a=1"}
	f.Add(string(s.Append(nil, good)), "c1", "https://example.com/", byte(0))
	good.Kind = TokenImpression
	f.Add(string(s.Append(nil, good)), "", "", byte(7))
	f.Add("", "x", "https://a.example/", byte(1))
	f.Add("AQIA", "y", "", byte(200))
	f.Fuzz(func(t *testing.T, text, campaign, landing string, flip byte) {
		for _, k := range []TokenKind{TokenClick, TokenImpression} {
			if tok, err := s.Parse([]byte(text), k); err == nil {
				if tok.Kind != k {
					t.Fatalf("kind %d parsed as %d", k, tok.Kind)
				}
				again := s.Append(nil, &tok)
				if !bytes.Equal(again, []byte(text)) {
					t.Fatalf("accepted a token that does not re-sign to itself")
				}
			} else if err != ErrBadToken {
				t.Fatalf("error %v", err)
			}
		}
		in := Token{Kind: TokenClick, Issued: int64(flip), Campaign: campaign, Landing: landing, Site: text}
		signed := s.Append(nil, &in)
		out, err := s.Parse(signed, TokenClick)
		if err != nil {
			t.Fatalf("own token refused: %v", err)
		}
		if len(campaign) <= 255 && len(text) <= 255 && len(landing) <= maxURL &&
			(out.Campaign != campaign || out.Landing != landing || out.Site != text) {
			t.Fatalf("round trip changed the token: %+v", out)
		}
		if len(signed) > 0 {
			b := bytes.Clone(signed)
			i := int(flip) % len(b)
			b[i] ^= 1 << (flip % 6)
			if b64Char(b[i]) && !bytes.Equal(b, signed) {
				if _, err := s.Parse(b, TokenClick); err == nil && !sameDecoded(b, signed) {
					t.Fatalf("altered token at byte %d accepted", i)
				}
			}
		}
	})
}

func b64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// sameDecoded: the last base64 character carries padding bits that decode
// to the same bytes; flipping those is no alteration.
func sameDecoded(a, b []byte) bool {
	x, err1 := b64.DecodeString(string(a))
	y, err2 := b64.DecodeString(string(b))
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// FuzzAdQuery: whatever the query and headers, /ad answers 200, 204 or 400,
// never panics, and a 200 is well-formed.
func FuzzAdQuery(f *testing.F) {
	for _, seed := range []string{
		"site=s1&slot=side",
		"site=s1&slot=side&u=v1&c=sport,news&fmt=json&url=https://x.example/a?b#c",
		"site=s1&slot=top&fmt=html&lang=de",
		"site=s1&slot=side&c=" + strings.Repeat("a,", 100),
		"site=%ff&slot=%00",
		"slot=side&site=s1&site=s2&u=" + strings.Repeat("v", 100),
		"site=s1&slot=side&gdpr=1&gdpr_consent=CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA",
	} {
		f.Add(seed, "de-DE,de;q=0.9", "uid=v1")
	}
	ix := Build(testSnap(camp("c1"), camp("c2", func(c *Campaign) {
		c.Targeting.Segments.Any = []string{"cycling"}
		c.Targeting.Categories.Include = []string{"sport"}
	})), t0, nil)
	e, err := NewEdge(context.Background(), staticCatalog(ix), WithTokenKeys(testKey), WithPublisher(&encoder{}),
		WithSegments(memRecords{"v1": record("cycling")}),
		WithConsent(func(*fasthttp.RequestCtx) consent.Set { return consent.All }))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query, lang, cookie string) {
		var req fasthttp.Request
		req.SetRequestURI("/ad?" + query)
		req.Header.Set("Accept-Language", lang)
		req.Header.SetUserAgent(BenchUserAgent)
		req.Header.Set("Cookie", cookie)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
		e.Ad(&ctx)
		switch code := ctx.Response.StatusCode(); code {
		case 200:
			if !bytes.HasPrefix(ctx.Response.Body(), []byte("{")) && !bytes.HasPrefix(ctx.Response.Body(), []byte("<!doctype")) {
				t.Fatalf("200 with body %q", ctx.Response.Body())
			}
		case 204, 400:
		default:
			t.Fatalf("status %d", code)
		}
		if got := e.faults.Load(); got != 0 {
			t.Fatalf("%d faults", got)
		}
	})
}

// FuzzAppendJSON: the ad JSON's strings decode to what encoding/json makes
// of the same text.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{"", "plain", `<a href="x">&amp;</a>`, "\x00\x1f\\\"", "é\u2028\u2029", "\xff\xfe ok"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mine := appendJSON(nil, s)
		var got, want string
		if err := json.Unmarshal(mine, &got); err != nil {
			t.Fatalf("%q: %v", mine, err)
		}
		std, _ := json.Marshal(s)
		_ = json.Unmarshal(std, &want)
		if got != want {
			t.Fatalf("%q decodes to %q, want %q", mine, got, want)
		}
	})
}

// FuzzModelBodies: whatever JSON a marketer or publisher sends, decoding and
// validation answer without panicking, and a campaign that validates never
// targets a sensitive segment or category (P1).
func FuzzModelBodies(f *testing.F) {
	f.Add([]byte(`{"id":"c1","advertiser":"a1","name":"C","start":"2025-01-01T00:00:00Z","cpm":2.5,"frequency_caps":[{"count":3,"window":"24h"}],"targeting":{"segments":{"any":["home.plumbing"]},"categories":{"include":["home-repair"]}},"tracking_numbers":["+7 495 000-11-22"]}`))
	f.Add([]byte(`{"id":"c2","advertiser":"a1","name":"C","start":"2025-01-01T00:00:00Z","targeting":{"categories":{"include":["oncology"]}}}`))
	f.Add([]byte(`{"id":"cr1","advertiser":"a1","campaign":"c1","type":"image","sizes":["300x250"],"landing":"https://example.com/"}`))
	f.Add([]byte(`{"id":"s1","publisher":"p1","name":"S","slots":[{"id":"top","sizes":["728x90"]}]}`))
	f.Add([]byte(`{"id":"a1","name":"A"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var c Campaign
		if json.Unmarshal(body, &c) == nil && c.Validate(nil) == nil {
			for _, v := range append(append(c.Targeting.Segments.Any, c.Targeting.Segments.All...), c.Targeting.Categories.Include...) {
				if _, bad := sensitive(v); bad {
					t.Fatalf("validated campaign targets sensitive %q", v)
				}
			}
		}
		var cr Creative
		if json.Unmarshal(body, &cr) == nil {
			_ = cr.Validate()
		}
		var s Site
		if json.Unmarshal(body, &s) == nil {
			_ = s.Validate()
		}
		var a Advertiser
		if json.Unmarshal(body, &a) == nil {
			_ = a.Validate()
		}
	})
}
