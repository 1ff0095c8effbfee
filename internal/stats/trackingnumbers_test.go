package stats

import "testing"

// Lookups compare digits only, and follow the catalog to its next version
// without serving the old one's numbers.
func TestTrackingNumbers(t *testing.T) {
	catalogs := map[int]map[string][]string{ // version: campaign → numbers
		1: {"calls": {"+7 (495) 123-45-67"}, "shop": {"8-800-555-35-35", "+1 212 555 0100"}},
		2: {"shop": {"+7 495 1234567"}},
	}
	version, builds := 1, 0
	numbers := NewTrackingNumbers(func() int { return version }, func(v int, add func(number, campaign string)) {
		builds++
		for campaign, nos := range catalogs[v] {
			for _, no := range nos {
				add(no, campaign)
			}
		}
	})
	for _, c := range []struct {
		version  int
		number   string
		campaign string
		ok       bool
	}{
		{1, "74951234567", "calls", true},
		{1, "+7 495 123 45 67", "calls", true},
		{1, "88005553535", "shop", true},
		{1, "(212) 555-0100", "", false}, // the country code is part of the number
		{1, "12125550100", "shop", true},
		{2, "+7 (495) 123-45-67", "shop", true},
		{2, "88005553535", "", false},
	} {
		version = c.version
		if got, ok := numbers.Campaign(c.number); got != c.campaign || ok != c.ok {
			t.Errorf("version %d, %q: got %q %v, want %q %v", c.version, c.number, got, ok, c.campaign, c.ok)
		}
	}
	if builds != 2 {
		t.Errorf("built %d times for 2 catalog versions", builds)
	}
}
