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

// BenchmarkBuildFivePartners prepares one change for five partners with the
// same contract, as a fan-out makes it: a version each round.
func BenchmarkBuildFivePartners(b *testing.B) {
	p := profile(map[profiles.Purpose]bool{profiles.Syndication: true}, profiles.PublicFields...)
	w := &Worker{}
	w.o.publicURL = "https://api.example"
	partners := make([]Partner, 5)
	for i := range partners {
		partners[i] = Partner{ID: "p" + string(rune('a'+i)), Fields: profiles.PublicFields}
	}
	b.ReportAllocs()
	version := uint64(0)
	for b.Loop() {
		version++
		for i := range partners {
			d, _ := w.build(&partners[i], "u1", version, p, state{}, 0, false)
			sink = d
		}
	}
}
