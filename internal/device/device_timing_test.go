package device

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/adsyn/adsyn/internal/event"
)

// Each benchmark has a baseline twin: the cheapest thing a caller could do
// instead (one substring search, one byte scan), measured in the same run.

var benchUAs = []struct {
	name string
	ua   []byte
}{
	{"chrome-windows", []byte(uaChromeWindows)},
	{"safari-iphone", []byte(uaSafariIPhone)},
	{"samsung-android", []byte(uaSamsungBrowser)},
	{"tizen-tv", []byte(uaTizenTV)},
	{"googlebot", []byte(uaGooglebot)},
}

var benchSink int

func BenchmarkParse(b *testing.B) {
	for _, u := range benchUAs {
		b.Run(u.name, func(b *testing.B) {
			b.ReportAllocs()
			var d event.Device
			for b.Loop() {
				Parse(Hints{UA: u.ua}, &d)
			}
			benchSink += len(d.Type)
		})
	}
	b.Run("client-hints", func(b *testing.B) {
		h := Hints{
			UA:                []byte(uaChromeReduced),
			CHUA:              []byte(`"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"`),
			CHMobile:          []byte("?1"),
			CHPlatform:        []byte(`"Android"`),
			CHPlatformVersion: []byte(`"14.0.0"`),
			CHModel:           []byte(`"SM-S918B"`),
		}
		b.ReportAllocs()
		var d event.Device
		for b.Loop() {
			Parse(h, &d)
		}
		benchSink += len(d.Model)
	})
	b.Run("baseline-contains-mobile", func(b *testing.B) {
		b.ReportAllocs()
		mobile := []byte("Mobile")
		for b.Loop() {
			for _, u := range benchUAs[:1] {
				if bytes.Contains(u.ua, mobile) {
					benchSink++
				}
			}
		}
	})
}

func BenchmarkIsBot(b *testing.B) {
	for _, u := range benchUAs {
		b.Run(u.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if IsBot(u.ua) {
					benchSink++
				}
			}
		})
	}
	b.Run("baseline-contains-bot", func(b *testing.B) {
		b.ReportAllocs()
		ua, bot := benchUAs[0].ua, []byte("bot")
		for b.Loop() {
			if bytes.Contains(ua, bot) {
				benchSink++
			}
		}
	})
}

func BenchmarkPrimaryLanguage(b *testing.B) {
	header := []byte("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7")
	b.Run("primary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchSink += len(PrimaryLanguage(header))
		}
	})
	b.Run("languages", func(b *testing.B) {
		b.ReportAllocs()
		dst := make([]string, 0, MaxLanguages)
		for b.Loop() {
			benchSink += len(Languages(header, dst[:0]))
		}
	})
	b.Run("baseline-first-comma", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchSink += bytes.IndexByte(header, ',')
		}
	})
}

func BenchmarkClientIP(b *testing.B) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	proxy := netip.MustParseAddr("10.0.0.1")
	xff := []byte("198.51.100.1, 10.0.0.2")
	b.Run("client-ip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchSink += ClientIP(proxy, xff, trusted).BitLen()
		}
	})
	b.Run("truncate-ip", func(b *testing.B) {
		b.ReportAllocs()
		ip, dst := netip.MustParseAddr("198.51.100.1"), make([]byte, 0, 64)
		for b.Loop() {
			benchSink += len(TruncateIP(dst[:0], ip, DefaultV4Bits, DefaultV6Bits))
		}
	})
	b.Run("baseline-netip-parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ip, _ := netip.ParseAddr("198.51.100.1")
			benchSink += ip.BitLen()
		}
	})
}

// BenchmarkCacheHit is a Cache answering a header set it holds, with and
// without Client Hints; BenchmarkCacheHitBaseline is its twin that only
// compares the hints with the entry's (what a hit must do at least).
func BenchmarkCacheHit(b *testing.B) {
	for _, h := range benchHints() {
		b.Run(h.name, func(b *testing.B) {
			var c Cache
			var d event.Device
			c.Parse(h.h, &d)
			for b.Loop() {
				c.Parse(h.h, &d)
			}
			benchSink += len(d.Type)
		})
	}
}

func BenchmarkCacheHitBaseline(b *testing.B) {
	for _, h := range benchHints() {
		b.Run(h.name, func(b *testing.B) {
			e := &cached{}
			fields := [6][]byte{h.h.UA, h.h.CHUA, h.h.CHMobile, h.h.CHPlatform, h.h.CHPlatformVersion, h.h.CHModel}
			for i, f := range fields {
				e.hints[i] = string(f)
			}
			for b.Loop() {
				f := [6][]byte{h.h.UA, h.h.CHUA, h.h.CHMobile, h.h.CHPlatform, h.h.CHPlatformVersion, h.h.CHModel}
				if e.matches(&f) {
					benchSink++
				}
			}
		})
	}
}

func benchHints() []struct {
	name string
	h    Hints
} {
	return []struct {
		name string
		h    Hints
	}{
		{"ua-only", Hints{UA: []byte(uaChromeWindows)}},
		{"client-hints", Hints{UA: []byte(uaChromeReduced), CHUA: []byte(`"Chromium";v="130", "Google Chrome";v="130"`),
			CHMobile: []byte("?1"), CHPlatform: []byte(`"Android"`), CHPlatformVersion: []byte(`"14.0.0"`), CHModel: []byte(`"Pixel 8"`)}},
	}
}
