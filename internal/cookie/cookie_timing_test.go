package cookie_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/cookie"
)

// BenchmarkSetVisitor writes the visitor cookie of a hit through a trusted
// proxy over TLS; BenchmarkSetVisitorCookie is its twin that writes the same
// header through a fasthttp.Cookie, as the writers did before.
func BenchmarkSetVisitor(b *testing.B) {
	p, ctx := benchPolicy()
	id := []byte("AbCdEfGhIjKlMnOpQrStUv")
	for b.Loop() {
		ctx.Response.Reset()
		p.SetVisitor(ctx, id)
	}
}

func BenchmarkSetVisitorCookie(b *testing.B) {
	p, ctx := benchPolicy()
	id := []byte("AbCdEfGhIjKlMnOpQrStUv")
	for b.Loop() {
		ctx.Response.Reset()
		c := fasthttp.AcquireCookie()
		ctx.Response.Header.SetCookie(serialisedInto(c, *p, cookie.Visitor, id, 395*24*3600, p.SecureFor(ctx), p.Partitioned))
		fasthttp.ReleaseCookie(c)
	}
}

func benchPolicy() (*cookie.Policy, *fasthttp.RequestCtx) {
	p := &cookie.Policy{Partitioned: true, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 5000}, nil)
	ctx.Request.Header.Set("X-Forwarded-Proto", "https")
	return p, &ctx
}
