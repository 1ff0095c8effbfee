package audience

import (
	"github.com/adsyn/adsyn/internal/event"
)

// MaxHourBytes bounds the encoded size of one site-hour, whatever the
// traffic: the breakdowns at their Limits with values of MaxValue bytes,
// and a dense sketch.
const MaxHourBytes = 80 << 10

// Hour is a site's audience in one hour (or, merged, in any range).
type Hour struct {
	Pageviews  uint64                   `msgpack:"pv,omitempty"`
	Searches   uint64                   `msgpack:"se,omitempty"`
	Events     uint64                   `msgpack:"ev,omitempty"` // custom events; by name in the event breakdown
	Visitors   Visitors                 `msgpack:"vi"`
	Breakdowns [NumDimensions]Breakdown `msgpack:"bd"`
}

// Add counts e if it is a pageview, a search or a custom event and reports
// whether it was one. A pageview counts in every breakdown but the event
// name's; a custom event counts there. Visitors count from every one of
// them that carries a visitor id (consented).
func (h *Hour) Add(e *event.Event) bool { return h.add(e, &Limits) }

func (h *Hour) add(e *event.Event, limits *[NumDimensions]int) bool {
	var v [NumDimensions]string
	switch e.Kind {
	case event.KindPageview:
		h.Pageviews++
		Values(e, &v)
		for d := range EventName {
			h.Breakdowns[d].Add(v[d], 1, limits[d])
		}
	case event.KindSearch:
		h.Searches++
	case event.KindCustom:
		h.Events++
		Values(e, &v)
		h.Breakdowns[EventName].Add(v[EventName], 1, limits[EventName])
	default:
		return false
	}
	h.Visitors.Add(e.Visitor)
	return true
}

// Absorb adds a batch o to a stored hour h within Limits: o's values that
// h does not hold yet enter while there is room, most frequent first (ties
// by value, so every aggregator decides alike); the rest count in Other.
func (h *Hour) Absorb(o *Hour) error {
	h.Pageviews += o.Pageviews
	h.Searches += o.Searches
	h.Events += o.Events
	for d := range h.Breakdowns {
		for _, c := range o.Breakdowns[d].sorted() {
			h.Breakdowns[d].Add(c.Value, c.Count, Limits[d])
		}
		h.Breakdowns[d].Other += o.Breakdowns[d].Other
	}
	return h.Visitors.Merge(&o.Visitors)
}

// Merge adds o to h: for a day or a range.
func (h *Hour) Merge(o *Hour) error {
	h.Pageviews += o.Pageviews
	h.Searches += o.Searches
	h.Events += o.Events
	for d := range h.Breakdowns {
		h.Breakdowns[d].Merge(&o.Breakdowns[d])
	}
	return h.Visitors.Merge(&o.Visitors)
}

// AddCounts adds o's counts to h: not its visitors, not its breakdowns
// (for figures that show none, at a fraction of Merge's cost).
func (h *Hour) AddCounts(o *Hour) {
	h.Pageviews += o.Pageviews
	h.Searches += o.Searches
	h.Events += o.Events
}
