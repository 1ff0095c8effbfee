package adserver

import (
	"context"
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
)

// BenchmarkAd is the /ad handler in process over 10,000 campaigns, with
// consent, a visitor record, device parsing and tokens; BenchmarkAdBaseline
// is its twin that only writes a fixed JSON body.
func BenchmarkAd(b *testing.B) {
	ix := benchIndex(nil)
	e, err := NewEdge(context.Background(), staticCatalog(ix), WithTokenKeys(testKey), WithPublisher(&encoder{}),
		WithSegments(newSyntheticRecords(1)), WithConsent(func(*fasthttp.RequestCtx) consent.Set { return consent.All }))
	if err != nil {
		b.Fatal(err)
	}
	bench := &Bench{Edge: e, opts: BenchOptions{Campaigns: 10000, Visitors: 1000000, Sites: 100}}
	runHandler(b, e.Ad, bench)
}

func BenchmarkAdBaseline(b *testing.B) {
	body := []byte(`{"id":"0123456789abcdef0123456789abcdef","campaign":"c1","creative":"c1-0","type":"image","w":300,"h":250}`)
	bench := &Bench{opts: BenchOptions{Campaigns: 10000, Visitors: 1000000, Sites: 100}}
	runHandler(b, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}, bench)
}

func runHandler(b *testing.B, h fasthttp.RequestHandler, bench *Bench) {
	uris := make([][]byte, 4096)
	for i := range uris {
		uris[i] = bench.AppendURI(nil, uint64(i))
	}
	var req fasthttp.Request
	req.Header.SetHost("ads.example")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	req.Header.Set("Accept-Language", "de-DE,de;q=0.9")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
	filled := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ctx.Request.SetRequestURIBytes(uris[i%len(uris)])
		ctx.Response.Reset()
		h(&ctx)
		if ctx.Response.StatusCode() == 200 {
			filled++
		}
	}
	b.ReportMetric(float64(filled)/float64(b.N), "fill")
}
