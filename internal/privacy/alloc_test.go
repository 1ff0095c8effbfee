//go:build !race

package privacy

import (
	"testing"

	"github.com/adsyn/adsyn/internal/event"
)

// Scrub runs on every event of the hot paths (pixel, /ad): with a warm
// Scratch it allocates nothing, clean event or dirty.
func TestScrubAllocations(t *testing.T) {
	s := newScrubber(t)
	var sc Scratch
	cats := make([]string, 0, 4)
	for name, src := range map[string]event.Event{
		"clean": {
			Kind: event.KindPageview, Visitor: "AbCdEfGhIjKlMnOpQrStUv", Site: "market", Slot: "top",
			URL: "https://shop.example/plumbing/taps?utm_source=news", Referrer: "https://search.example/",
			Query: "kitchen taps", Categories: []string{"plumbing", "home-repair"}, Lang: "en",
			IP: "203.0.113.77", Device: event.Device{Type: "mobile", OS: "Android", OSVersion: "14", Model: "Pixel 8"},
		},
		"dirty": {
			Kind: event.KindSearch, URL: "https://shop.example/u/john%40example.com?email=x&utm_term=hiv#top",
			Query: "call +7 495 123-45-67", Categories: []string{"hiv", "taps"}, IP: "2001:db8:85a3::7",
		},
	} {
		allocs := testing.AllocsPerRun(200, func() {
			e := src
			e.Categories = append(cats[:0], src.Categories...)
			s.Scrub(&e, &sc)
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per Scrub", name, allocs)
		}
	}
}
