package pixel_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/pixel"
)

// decoding publishes through the production choke point, as bus.Publisher
// does, and checks that what would be sent decodes again and keeps the
// limits and P6.
type decoding struct {
	t *testing.T
	*scrubbing
}

func (d decoding) Publish(e *event.Event) bool {
	d.scrubbing.Publish(e)
	var got event.Event
	if err := event.Unmarshal(d.buf, &got); err != nil {
		d.t.Fatalf("published event does not decode: %v", err)
	}
	if len(got.URL) > pixel.MaxURL || len(got.Query) > pixel.MaxQuery || len(got.Categories) > pixel.MaxCategories {
		d.t.Fatalf("limits not applied: %+v", got)
	}
	if got.IP != "" {
		ip, err := netip.ParseAddr(got.IP)
		if err != nil || ip.Is4() && ip.As4()[3] != 0 || ip.Is6() && ip != netip.PrefixFrom(ip, 48).Masked().Addr() {
			d.t.Fatalf("address %q kept more than the configured prefix (P6)", got.IP)
		}
	}
	if got.Country != "" && got.Country != "DE" && got.Country != "US" {
		d.t.Fatalf("country %q not from the geo database", got.Country)
	}
	return true
}

// FuzzPixelRequest runs the pixel with the options `serve` wires and the
// production choke point behind it; the address comes through a trusted
// proxy's X-Forwarded-For, so the geo hook and the GDPR region see it.
func FuzzPixelRequest(f *testing.F) {
	f.Add("/p.gif?site=s1&u=https%3A%2F%2Fa.example%2F&c=a,b&q=x&e=search", "uid=AbCdEfGhIjKlMnOpQrStUv", "ru-RU,ru;q=0.9", "81.2.69.10")
	f.Add("/p.gif?gdpr=1&gdpr_consent=CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA", "euconsent-v2=%%%", "*", "8.8.8.8")
	f.Add("/p.gif?v=1e308&e=custom&n=%FF", "uid=;uid=;adsyn_optout=1", "", "::ffff:81.2.69.10, x")
	f.Add("/p.gif?c=,,,,%2C%2C&u=\x00", "\xff\xfe", "en;q=abc", "2001:db8::1")
	f.Add("/p.gif?site=s1&u=https%3A%2F%2Fclinic.example%2Fhiv-test%3Femail%3Da%40b.example&q=depression", "", "de", "81.2.69.200")
	opts := servedOptions(f)
	f.Fuzz(func(t *testing.T, uri, cookie, lang, xff string) {
		o := opts
		o.Metrics = metrics.NewRegistry() // one handler per input: keep each input's series apart
		h := pixel.New(decoding{t, newScrubbing(t)}, o)
		var ctx fasthttp.RequestCtx
		ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 40000})
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
