//go:build !race

package cookie_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/cookie"
)

func TestSetVisitorAllocs(t *testing.T) {
	p := cookie.Policy{Partitioned: true, Domain: "ads.example", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	var req fasthttp.Request
	req.Header.Set("X-Forwarded-Proto", "https")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 5000}, nil)
	id := []byte("AbCdEfGhIjKlMnOpQrStUv")
	p.SetVisitor(&ctx, id)
	if n := testing.AllocsPerRun(1000, func() {
		ctx.Response.Reset()
		p.SetVisitor(&ctx, id)
	}); n != 0 {
		t.Errorf("SetVisitor allocates %.1f times", n)
	}
}
