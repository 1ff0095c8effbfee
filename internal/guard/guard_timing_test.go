package guard

import "testing"

// The texts of segments' BenchmarkSensitive before the guard moved, so the
// figures compare.
var benchTexts = []string{"срочно нужен сантехник на дом", "https://market.example/ru/uslugi/santehnika/moskva?page=2", "wedding photographer in berlin"}

func BenchmarkSensitive(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		Sensitive(benchTexts[i%len(benchTexts)])
	}
}

// BenchmarkFold is Sensitive's baseline twin: the folding alone, without
// the lexicon.
func BenchmarkFold(b *testing.B) {
	b.ReportAllocs()
	f := AcquireFolder()
	defer ReleaseFolder(f)
	for i := 0; b.Loop(); i++ {
		f.Fold(benchTexts[i%len(benchTexts)])
	}
}

// BenchmarkSensitiveCached is BenchmarkSensitive through a warm Cache, as
// the choke point asks about texts that recur.
func BenchmarkSensitiveCached(b *testing.B) {
	c := NewCache(Default(), 4096)
	texts := make([][]byte, len(benchTexts))
	for i, t := range benchTexts {
		texts[i] = []byte(t)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.SensitiveBytes(texts[i%len(texts)])
	}
}
