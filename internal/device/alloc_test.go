//go:build !race

package device

import (
	"net/netip"
	"testing"

	"github.com/adsyn/adsyn/internal/event"
)

// The edge calls all of this on every request: none of it may allocate.
func TestZeroAllocs(t *testing.T) {
	uas := [][]byte{
		[]byte(uaChromeWindows), []byte(uaSafariIPhone), []byte(uaSafariIPad), []byte(uaChromeSamsung),
		[]byte(uaUCBrowser), []byte(uaTizenTV), []byte(uaGooglebot), []byte(uaHeadless), []byte("x"), nil,
	}
	hints := Hints{
		UA:                []byte(uaChromeReduced),
		CHUA:              []byte(`"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"`),
		CHMobile:          []byte("?1"),
		CHPlatform:        []byte(`"Android"`),
		CHPlatformVersion: []byte(`"14.0.0"`),
		CHModel:           []byte(`"SM-S918B"`),
	}
	lang := []byte("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5")
	langs := make([]string, 0, MaxLanguages)
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	proxy := netip.MustParseAddr("10.0.0.1")
	v6 := netip.MustParseAddr("2001:db8:1:2::3")
	ipBuf := make([]byte, 0, 64)
	var sink int

	cases := []struct {
		name string
		fn   func()
	}{
		{"Parse user agents", func() {
			var d event.Device
			for _, ua := range uas {
				Parse(Hints{UA: ua}, &d)
				sink += len(d.OSVersion)
			}
		}},
		{"Parse client hints", func() {
			var d event.Device
			Parse(hints, &d)
			sink += len(d.Model)
		}},
		{"IsBot", func() {
			for _, ua := range uas {
				if IsBot(ua) {
					sink++
				}
			}
		}},
		{"IsPrefetch", func() {
			if IsPrefetch(nil, []byte("prefetch;prerender"), nil) {
				sink++
			}
		}},
		{"PrimaryLanguage", func() { sink += len(PrimaryLanguage(lang)) }},
		{"Languages", func() { sink += len(Languages(lang, langs[:0])) }},
		{"TruncateIP", func() {
			sink += len(TruncateIP(ipBuf[:0], proxy, DefaultV4Bits, DefaultV6Bits))
			sink += len(TruncateIP(ipBuf[:0], v6, DefaultV4Bits, DefaultV6Bits))
		}},
		{"ClientIP", func() {
			sink += ClientIP(proxy, []byte("198.51.100.1, [2001:db8::1]:443, 10.0.0.2"), trusted).BitLen()
		}},
		{"ClientIP malformed", func() {
			sink += ClientIP(proxy, []byte("999.1.1.1, fe80::1%eth0, 1::2::3"), trusted).BitLen()
		}},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(100, c.fn); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", c.name, n)
		}
	}
	_ = sink
}
