package guard

import "testing"

var benchTexts = []string{"срочно нужен сантехник на дом", "https://market.example/ru/uslugi/santehnika/moskva?page=2", "wedding photographer in berlin"}

func BenchmarkSensitive(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		Sensitive(benchTexts[i%len(benchTexts)])
	}
}
