package pixel_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/pixel"
)

// BenchmarkPixel is GET /p.gif in process with the options `serve` wires
// and the production choke point behind it, for a returning visitor and for
// a hit without a cookie (a new id and its Set-Cookie). BenchmarkPixelBaseline
// is its twin that only answers the GIF with the same headers.
func BenchmarkPixel(b *testing.B) {
	for _, c := range []struct {
		name   string
		cookie bool
	}{{"returning", true}, {"cookieless", false}} {
		b.Run(c.name, func(b *testing.B) {
			h := pixel.New(newScrubbing(b), servedOptions(b))
			runPixel(b, h.GIF, c.cookie)
		})
	}
}

func BenchmarkPixelBaseline(b *testing.B) {
	runPixel(b, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.SetContentType("image/gif")
		ctx.Response.Header.Set("Accept-CH", "Sec-CH-UA-Platform-Version, Sec-CH-UA-Model, Sec-CH-UA-Full-Version-List")
		ctx.Response.Header.Set("Cache-Control", "no-store, max-age=0")
		ctx.Response.Header.Set("Cross-Origin-Resource-Policy", "cross-origin")
		ctx.SetBody(pixel.GIF)
	}, true)
}

// runPixel sends the hits of `adsyn bench pixel`: one of 100 pages, every
// tenth a search, from a visitor outside any GDPR region.
func runPixel(b *testing.B, h fasthttp.RequestHandler, withCookie bool) {
	uris := make([][]byte, 100)
	for i := range uris {
		if i%10 == 0 {
			uris[i] = []byte("/p.gif?site=bench-site&e=search&q=plumber&c=home,repair&u=https%3A%2F%2Fpub.example%2Fsearch")
		} else {
			uris[i] = []byte("/p.gif?site=bench-site&c=home,repair&u=https%3A%2F%2Fpub.example%2Fpage%2F" + strconv.Itoa(i))
		}
	}
	var req fasthttp.Request
	req.Header.SetHost("edge.example")
	req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36")
	req.Header.Set("Accept-Language", "ru-RU,ru;q=0.9,en;q=0.8")
	req.Header.Set("X-Forwarded-For", addrUS.String())
	if withCookie {
		req.Header.SetCookie(pixel.CookieName, "AbCdEfGhIjKlMnOpQrStUv")
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 40000}, nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ctx.Request.SetRequestURIBytes(uris[i%len(uris)])
		ctx.Response.Reset()
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d", ctx.Response.StatusCode())
		}
	}
}
