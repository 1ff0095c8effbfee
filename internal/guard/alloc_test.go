//go:build !race

package guard

import "testing"

func TestSensitiveAllocs(t *testing.T) {
	for _, text := range []string{
		"https://example.com/uslugi/psiholog?x=1",
		"срочно нужен сантехник на дом",
		"wedding photographer in berlin",
		"https://xn--b1am9b.xn--p1ai/hivtest?q=psikhiatr+helpdepression",
		"https://market.example/ru/uslugi/santehnika/moskva?page=2",
	} {
		if n := testing.AllocsPerRun(200, func() { Sensitive(text) }); n != 0 {
			t.Errorf("Sensitive(%q): %v allocations", text, n)
		}
		b := []byte(text)
		if n := testing.AllocsPerRun(200, func() { SensitiveBytes(b) }); n != 0 {
			t.Errorf("SensitiveBytes(%q): %v allocations", text, n)
		}
	}
}

// A cache hit allocates nothing either.
func TestCacheHitAllocs(t *testing.T) {
	c := NewCache(Default(), 64)
	for _, text := range benchTexts {
		b := []byte(text)
		c.SensitiveBytes(b)
		if n := testing.AllocsPerRun(200, func() { c.SensitiveBytes(b) }); n != 0 {
			t.Errorf("SensitiveBytes(%q), cached: %v allocations", text, n)
		}
		if n := testing.AllocsPerRun(200, func() { c.Sensitive(text) }); n != 0 {
			t.Errorf("Sensitive(%q), cached: %v allocations", text, n)
		}
	}
}
