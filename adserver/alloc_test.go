//go:build !race

package adserver

import (
	"context"
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
)

func TestDecideAllocs(t *testing.T) {
	for _, m := range benchModels {
		ix := benchIndex(m.mod)
		reqs := benchRequests(512, t0.UnixMilli())
		i := 0
		if n := testing.AllocsPerRun(2000, func() {
			ix.Decide(&reqs[i%len(reqs)])
			i++
		}); n != 0 {
			t.Errorf("%s: Decide allocates %.2f times per call", m.name, n)
		}
	}
}

func TestAdAllocs(t *testing.T) {
	g, err := OpenGeoBytes(testGeoDB(t))
	if err != nil {
		t.Fatal(err)
	}
	ix := benchIndex(nil)
	recs := newSyntheticRecords(1)
	for _, tc := range []struct {
		name   string
		cs     consent.Set
		uri    string
		max    float64
		origin string
	}{
		{"contextual", consent.Set(0).With(consent.Contextual), "/ad?site=s3&slot=side&c=sport,news&url=https://pub.example/a", 0, ""},
		{"personalized", consent.All, "/ad?site=s3&slot=side&u=v12345&c=sport&fmt=json", 1, ""}, // the visitor id handed to the store
		{"html", consent.All, "/ad?site=s7&slot=top&u=v9&fmt=html", 1, ""},
		{"cross-origin, not registered", consent.All, "/ad?site=s3&slot=side&u=v12345&c=sport&fmt=json", 0, "https://pub.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewEdge(context.Background(), staticCatalog(ix), WithTokenKeys(testKey), WithPublisher(&encoder{}),
				WithSegments(recs), WithGeo(g), WithConsent(func(*fasthttp.RequestCtx) consent.Set { return tc.cs }))
			if err != nil {
				t.Fatal(err)
			}
			var req fasthttp.Request
			req.SetRequestURI(tc.uri)
			req.Header.SetHost("ads.example")
			req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
			req.Header.Set("Accept-Language", "de-DE,de;q=0.9,en;q=0.8")
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP("81.2.69.160"), Port: 5000}, nil)
			uri := []byte(tc.uri)
			served := 0
			n := testing.AllocsPerRun(2000, func() {
				ctx.Request.SetRequestURIBytes(uri)
				ctx.Response.Reset()
				e.Ad(&ctx)
				if ctx.Response.StatusCode() == 200 {
					served++
				}
			})
			if served == 0 {
				t.Fatalf("no ad served: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
			if n > tc.max {
				t.Errorf("Ad allocates %.2f times per request, want <= %v", n, tc.max)
			}
		})
	}
}

// TestLimitsAllocs: the visitor ceiling and the replay memory add no
// allocation per request once a visitor is known.
func TestLimitsAllocs(t *testing.T) {
	c := newCeiling(1 << 30)
	cnt := newCounted(1<<40, 1<<20)
	var id [16]byte
	c.charge(7, 1)
	cnt.first(id, 1)
	if n := testing.AllocsPerRun(2000, func() {
		c.charge(7, 1)
		cnt.first(id, 2)
	}); n != 0 {
		t.Errorf("%.2f allocations per request", n)
	}
}
