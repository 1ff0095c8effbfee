package privacy

import (
	"testing"

	"github.com/adsyn/adsyn/internal/event"
)

// BenchmarkScrub measures the choke point on a typical pixel event, clean
// and dirty; its baseline twin copies the same event without scrubbing.
func BenchmarkScrub(b *testing.B) {
	s := newScrubber(b)
	clean := event.Event{
		Kind: event.KindPageview, Visitor: "AbCdEfGhIjKlMnOpQrStUv", Site: "market", Slot: "top",
		URL: "https://shop.example/plumbing/taps?utm_source=news", Referrer: "https://search.example/",
		Query: "kitchen taps", Categories: []string{"plumbing", "home-repair"}, Lang: "en",
		IP: "203.0.113.77", Device: event.Device{Type: "mobile", OS: "Android", OSVersion: "14", Model: "Pixel 8"},
	}
	dirty := clean
	dirty.URL = "https://shop.example/u/john%40example.com?email=x&utm_term=hiv#top"
	dirty.Query = "call +7 495 123-45-67"
	cats := make([]string, 0, 4)
	for _, c := range []struct {
		name  string
		e     *event.Event
		scrub bool
	}{{"baseline", &clean, false}, {"clean", &clean, true}, {"dirty", &dirty, true}} {
		b.Run(c.name, func(b *testing.B) {
			var sc Scratch
			b.ReportAllocs()
			for b.Loop() {
				e := *c.e
				e.Categories = append(cats[:0], c.e.Categories...)
				if c.scrub {
					s.Scrub(&e, &sc)
				}
			}
		})
	}
}
