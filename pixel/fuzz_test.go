package pixel_test

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/pixel"
)

// decoding checks that whatever the pixel publishes decodes again.
type decoding struct{ t *testing.T }

func (d decoding) Publish(e *event.Event) bool {
	var got event.Event
	if err := event.Unmarshal(e.Marshal(), &got); err != nil {
		d.t.Fatalf("published event does not decode: %v", err)
	}
	if len(got.URL) > pixel.MaxURL || len(got.Query) > pixel.MaxQuery || len(got.Categories) > pixel.MaxCategories {
		d.t.Fatalf("limits not applied: %+v", got)
	}
	return true
}

func FuzzPixelRequest(f *testing.F) {
	f.Add("/p.gif?site=s1&u=https%3A%2F%2Fa.example%2F&c=a,b&q=x&e=search", "uid=AbCdEfGhIjKlMnOpQrStUv", "ru-RU,ru;q=0.9", "1.2.3.4")
	f.Add("/p.gif?gdpr=1&gdpr_consent=CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA", "euconsent-v2=%%%", "*", "")
	f.Add("/p.gif?v=1e308&e=custom&n=%FF", "uid=;uid=;adsyn_optout=1", "", "::ffff:1.2.3.4, x")
	f.Add("/p.gif?c=,,,,%2C%2C&u=\x00", "\xff\xfe", "en;q=abc", "2001:db8::1")
	f.Fuzz(func(t *testing.T, uri, cookie, lang, xff string) {
		h := pixel.New(decoding{t}, pixel.Options{})
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(uri)
		ctx.Request.Header.Set("Cookie", cookie)
		ctx.Request.Header.Set("Accept-Language", lang)
		ctx.Request.Header.Set("X-Forwarded-For", xff)
		ctx.Request.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
		h.GIF(&ctx)
		if ctx.Response.StatusCode() != 200 || string(ctx.Response.Body()) != string(pixel.GIF) {
			t.Fatalf("status %d", ctx.Response.StatusCode())
		}
		if c := ctx.Response.Header.PeekCookie(pixel.CookieName); len(c) > 0 {
			var ck fasthttp.Cookie
			if err := ck.ParseBytes(c); err != nil || !pixel.ValidVisitorID(ck.Value()) {
				t.Fatalf("bad cookie written: %q", c)
			}
		}
	})
}

func FuzzVisitorCookie(f *testing.F) {
	f.Add([]byte("AbCdEfGhIjKlMnOpQrStUv"))
	f.Add([]byte("AbCdEfGhIjKlMnOpQrStU="))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		if pixel.ValidVisitorID(b) && len(b) != pixel.VisitorIDLen {
			t.Fatal("accepted an id of the wrong length")
		}
	})
}
