package adserver

import (
	"fmt"
	"slices"
	"testing"

	"github.com/adsyn/adsyn/adserver/decision"
	"github.com/adsyn/adsyn/segments"
)

// benchRequests are varied requests over BenchSnapshot's model: every site
// and slot, languages, countries, devices, page categories, and visitor
// records with segments and frequency counters, most with consent.
func benchRequests(n int, now int64) []Request {
	p := prng(3)
	recs := make([]segments.Record, 256)
	for i := range recs {
		recs[i] = benchRecord(p.next(), now)
	}
	out := make([]Request, n)
	for i := range out {
		r := &out[i]
		*r = Request{Now: now, Site: fmt.Sprintf("s%d", p.n(100)), Slot: []string{"top", "side"}[p.n(2)],
			Lang: benchLangs[p.n(len(benchLangs))], Country: benchCountries[p.n(len(benchCountries))],
			Device: benchDevices[p.n(3)], Categories: pickN(&p, benchCats, 1+p.n(2)),
			Personalize: p.pct(70), Rand: p.next()}
		if p.pct(80) {
			r.Record = &recs[p.n(len(recs))]
		}
	}
	return out
}

// benchModels: "mix" is BenchSnapshot's spread (most requests are filled
// by one of the first campaigns in rank order); "narrow" has every campaign
// target one segment of 200 and one category of 40, so a winner lies deep.
var benchModels = []struct {
	name string
	mod  func(p *prng, c *Campaign)
}{
	{"mix", nil},
	{"narrow", func(p *prng, c *Campaign) {
		c.Targeting.Segments = SegmentRule{Any: []string{benchSegment(p.next())}}
		c.Targeting.Categories = List{Include: []string{benchCats[p.n(len(benchCats))]}}
	}},
}

func benchIndex(mod func(*prng, *Campaign)) *Index {
	snap := BenchSnapshot(10000, 100, 1)
	if mod != nil {
		p := prng(5)
		for _, c := range snap.Campaigns {
			mod(&p, c)
		}
	}
	return Build(snap, t0, nil)
}

// BenchmarkDecide is the decision over 10,000 campaigns through the index.
func BenchmarkDecide(b *testing.B) {
	for _, m := range benchModels {
		b.Run(m.name, func(b *testing.B) {
			ix := benchIndex(m.mod)
			reqs := benchRequests(4096, t0.UnixMilli())
			served := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, ok := ix.Decide(&reqs[i%len(reqs)]); ok {
					served++
				}
			}
			b.ReportMetric(float64(served)/float64(b.N), "fill")
		})
	}
}

// BenchmarkDecideLinear is the baseline twin: the same requests decided by
// testing each campaign's rules in rank order until one passes, as a server
// without an index would.
func BenchmarkDecideLinear(b *testing.B) {
	for _, m := range benchModels {
		b.Run(m.name, func(b *testing.B) {
			ix := benchIndex(m.mod)
			reqs := benchRequests(4096, t0.UnixMilli())
			served := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if linearDecide(ix, &reqs[i%len(reqs)]) >= 0 {
					served++
				}
			}
			b.ReportMetric(float64(served)/float64(b.N), "fill")
		})
	}
}

func linearDecide(ix *Index, r *Request) int {
	se := ix.sites[r.Site]
	if se == nil {
		return -1
	}
	sl := se.slots[r.Slot]
	if sl == nil {
		return -1
	}
	in := func(l List, vals ...string) bool {
		if len(l.Include) > 0 && !slices.ContainsFunc(vals, func(v string) bool { return slices.Contains(l.Include, v) }) {
			return false
		}
		return !slices.ContainsFunc(vals, func(v string) bool { return slices.Contains(l.Exclude, v) })
	}
	for i := range ix.camps {
		e := &ix.camps[i]
		t := &e.c.Targeting
		if e.off != "" || !sl.base.has(i) || !in(t.Languages, r.Lang) || !in(t.Countries, r.Country, r.Region) ||
			!in(t.Devices, r.Device) || !in(t.Categories, append(r.Categories, se.site.Categories...)...) {
			continue
		}
		if len(t.Segments.Any) > 0 || len(t.Segments.All) > 0 {
			if !r.Personalize || r.Record == nil || len(t.Segments.Any) > 0 && !slices.ContainsFunc(r.Record.Segments, func(s segments.Score) bool {
				return slices.Contains(t.Segments.Any, s.ID)
			}) {
				continue
			}
		}
		if r.Personalize && r.Record != nil && slices.ContainsFunc(r.Record.Segments, func(s segments.Score) bool {
			return slices.Contains(t.Segments.None, s.ID)
		}) {
			continue
		}
		if e.block(r) == decision.Serve {
			return i
		}
	}
	return -1
}

// BenchmarkBuild is an index build of 10,000 campaigns: the first, and a
// rebuild after a change as the catalog makes it (the creatives' documents
// are kept from the index before).
func BenchmarkBuild(b *testing.B) {
	snap := BenchSnapshot(10000, 100, 1)
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Build(snap, t0, nil)
		}
	})
	b.Run("rebuild", func(b *testing.B) {
		prev := Build(snap, t0, nil)
		b.ReportAllocs()
		for b.Loop() {
			prev = build(snap, t0, nil, prev)
		}
	})
}
