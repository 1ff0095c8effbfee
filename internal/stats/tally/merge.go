package tally

import (
	"math"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/stats/audience"
)

// Fold sums a Delta's entries per breakdown value; one per writer,
// reused from record to record.
type Fold struct {
	at   [NumDims]map[uint32]int32 // value number -> index in sums
	sums [NumDims][]Counters
	aud  [audience.NumDimensions]map[uint32]uint64 // audience value number + 1 -> count
}

func NewFold() *Fold {
	f := &Fold{}
	for d := range f.at {
		f.at[d] = map[uint32]int32{}
	}
	for d := range f.aud {
		f.aud[d] = map[uint32]uint64{}
	}
	return f
}

// hits sums a Delta's audience hits into h; n names their values.
func (f *Fold) hits(hs []hit, n *Names, h *audience.Hour) {
	for d := range f.aud {
		clear(f.aud[d])
	}
	for i := range hs {
		x := &hs[i]
		switch x.kind {
		case event.KindPageview:
			h.Pageviews++
		case event.KindSearch:
			h.Searches++
		case event.KindCustom:
			h.Events++
		}
		for d, id := range x.ids {
			if id > 0 {
				f.aud[d][id]++
			}
		}
		if x.hasVisitor {
			h.Visitors.AddHash(x.visitor)
		}
	}
	for d := range f.aud {
		for id, c := range f.aud[d] {
			h.Breakdowns[d].Add(n.Audience[d][id-1], c, math.MaxInt)
		}
	}
}

// Merge adds d's counters to r, for the dimensions of scope s; n names d's
// breakdown values.
func (r *Record) Merge(s Scope, d *Delta, n *Names, maxValues int, f *Fold) error {
	if d.Reach != nil {
		r.ReachImpressions += d.ReachImpressions
		if r.Reach == nil {
			r.Reach = &audience.Visitors{}
		}
		if err := r.Reach.Merge(d.Reach); err != nil {
			return err
		}
	}
	if len(d.Hits) > 0 {
		var h audience.Hour
		f.hits(d.Hits, n, &h)
		if r.Audience == nil {
			r.Audience = &audience.Hour{}
		}
		if err := r.Audience.Absorb(&h); err != nil {
			return err
		}
	}
	r.Totals.Add(&d.Counters)
	for dim := range f.at {
		clear(f.at[dim])
		f.sums[dim] = f.sums[dim][:0]
	}
	for i := range d.Entries {
		e := &d.Entries[i]
		if e.kind == event.KindClick && !r.firstClick(e.click) {
			r.Totals.Clicks--
			continue
		}
		c := e.counters()
		for dim := range NumDims {
			if !s.Has(dim) {
				continue
			}
			j, ok := f.at[dim][e.ids[dim]]
			if !ok {
				j = int32(len(f.sums[dim]))
				f.at[dim][e.ids[dim]] = j
				f.sums[dim] = append(f.sums[dim], Counters{})
			}
			f.sums[dim][j].Add(&c)
		}
	}
	for dim := range NumDims {
		if len(f.sums[dim]) == 0 {
			continue
		}
		if r.Dims[dim] == nil {
			r.Dims[dim] = make(map[string]Counters, len(f.sums[dim]))
		}
		rm := r.Dims[dim]
		for id, j := range f.at[dim] {
			v := n.Dims[dim][id]
			cur, ok := rm[v]
			if !ok && len(rm) >= maxValues && v != Other {
				v = Other
				cur = rm[v]
			}
			cur.Add(&f.sums[dim][j])
			rm[v] = cur
		}
	}
	return nil
}
