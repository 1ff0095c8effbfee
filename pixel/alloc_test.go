//go:build !race

package pixel_test

import (
	"net"
	"net/url"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/pixel"
)

// TestPixelAllocations holds the pixel to at most one allocation per hit,
// with the options `serve` wires (geo country hook, GDPR region, TCF vendor,
// trusted proxy, metrics) and the production choke point behind it.
func TestPixelAllocations(t *testing.T) {
	tc := grantAll(t)
	for _, c := range []struct {
		name, xff, query, country, ip string
	}{
		{"EEA visitor with a TC string", addrDE.String(), "&gdpr=1&gdpr_consent=" + url.QueryEscape(tc), "DE", "81.2.69.0"},
		{"visitor outside the region", addrUS.String(), "", "US", "8.8.8.0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pub := newScrubbing(t)
			h := pixel.New(pub, servedOptions(t))
			var ctx fasthttp.RequestCtx
			ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 40000})
			ctx.Request.SetRequestURI("/p.gif?site=s1&u=https%3A%2F%2Fpub.example%2Fx&c=home,repair&e=search&q=plumber" + c.query)
			ctx.Request.Header.Set("User-Agent", "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36")
			ctx.Request.Header.Set("Accept-Language", "ru-RU,ru;q=0.9")
			ctx.Request.Header.Set("Cookie", "uid=AbCdEfGhIjKlMnOpQrStUv")
			ctx.Request.Header.Set("X-Forwarded-For", c.xff)
			h.GIF(&ctx) // warm pools and the geo cache
			// The hooks ran: country from the database, consent from the
			// string, the address truncated by the choke point.
			if e := &pub.ev; e.Country != c.country || !e.Consent.Allow(consent.Personalize) || e.IP != c.ip || e.Visitor == "" {
				t.Fatalf("published %+v", pub.ev)
			}
			n := testing.AllocsPerRun(1000, func() {
				ctx.Response.Reset()
				h.GIF(&ctx)
			})
			if n > 1 {
				t.Fatalf("pixel handler allocates %v times per request; want at most 1", n)
			}
			t.Logf("allocs per request: %v", n)
		})
	}
}
