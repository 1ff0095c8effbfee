//go:build !race

package pixel_test

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/pixel"
)

type discard struct{ buf []byte }

func (d *discard) Publish(e *event.Event) bool { d.buf = e.AppendMsgpack(d.buf[:0]); return true }

func TestPixelAllocations(t *testing.T) {
	h := pixel.New(&discard{buf: make([]byte, 0, 4096)}, pixel.Options{})
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/p.gif?site=s1&u=https%3A%2F%2Fpub.example%2Fx&c=home,repair&e=search&q=plumber")
	ctx.Request.Header.Set("User-Agent", "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36")
	ctx.Request.Header.Set("Accept-Language", "ru-RU,ru;q=0.9")
	ctx.Request.Header.Set("Cookie", "uid=AbCdEfGhIjKlMnOpQrStUv")
	h.GIF(&ctx) // warm pools
	n := testing.AllocsPerRun(1000, func() {
		ctx.Response.Reset()
		h.GIF(&ctx)
	})
	if n > 1 {
		t.Fatalf("pixel handler allocates %v times per request; want at most 1", n)
	}
	t.Logf("allocs per request: %v", n)
}
