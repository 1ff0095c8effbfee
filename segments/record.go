package segments

import (
	"github.com/adsyn/adsyn/internal/guard"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// Record is what adsyn holds about one visitor cookie in adsyn_segments, keyed
// by visitor id. The builder writes it; the ad server reads it through Store.
// It never holds a raw search query or a sensitive segment (P1).
type Record struct {
	Visitor  string   `msgpack:"v"`
	Segments []Score  `msgpack:"s,omitempty"` // sorted by ID
	Langs    []string `msgpack:"l,omitempty"` // primary language subtags seen, most recent first
	Caps     []Cap    `msgpack:"f,omitempty"` // sorted by Campaign
	LastSeen int64    `msgpack:"ls"`          // unix ms of the newest event applied

	// Events counts the events applied to the record, sensitive ones included
	// (they count but contribute nothing).
	Events uint64 `msgpack:"n,omitempty"`
	// Since is set when the record was erased (opt-out) and then started
	// again: events captured before it are not applied (unix ms).
	Since int64 `msgpack:"si,omitempty"`
	// Applied holds the stream sequences of the last messages applied, so a
	// redelivered message is not counted twice.
	Applied []uint64 `msgpack:"ap,omitempty"`
}

// Score is a visitor's decayed interest in one segment, and why.
type Score struct {
	ID    string  `msgpack:"i"`
	Score float64 `msgpack:"s"`           // as of At; decays with the configured half-life
	At    int64   `msgpack:"t"`           // unix ms of the last contribution
	Rule  string  `msgpack:"r,omitempty"` // the rule that last fired, for the visibility endpoint
}

// Cap holds one campaign's recent impression times for frequency capping.
type Cap struct {
	Campaign string  `msgpack:"c"`
	Times    []int64 `msgpack:"t"` // unix ms, ascending, bounded (the builder trims old ones)
}

// RecordAllowed reports whether every segment of r is in tax and none is
// sensitive, and every rule is one of tax's (P1).
func RecordAllowed(r *Record, tax *taxonomy.Taxonomy) bool {
	for _, s := range r.Segments {
		seg, ok := tax.Segment(s.ID)
		if !ok || seg.Category.Sensitive() {
			return false
		}
		if _, bad := guard.Sensitive(s.ID + " " + seg.Name); bad {
			return false
		}
		if !tax.HasRule(s.Rule) {
			return false
		}
	}
	return true
}
