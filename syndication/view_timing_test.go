package syndication

import (
	"encoding/json"
	"testing"

	"github.com/adsyn/adsyn/internal/profiles"
)

var sink any

// BenchmarkBuild builds and hashes a partner view; its baseline marshals the
// whole record, which is what copying a profile out would cost.
func BenchmarkBuild(b *testing.B) {
	p := profile(map[profiles.Purpose]bool{profiles.Syndication: true}, profiles.PublicFields...)
	c := Contract{Fields: profiles.PublicFields}
	b.ReportAllocs()
	for b.Loop() {
		v := Build(p, c, "https://api.example")
		sink = v.Hash()
	}
}

func BenchmarkBuildBaseline(b *testing.B) {
	p := profile(map[profiles.Purpose]bool{profiles.Syndication: true}, profiles.PublicFields...)
	b.ReportAllocs()
	for b.Loop() {
		sink, _ = json.Marshal(p)
	}
}
