package decision

import "slices"

// Cap allows at most Count impressions per visitor within Window ms.
type Cap struct {
	Count  int
	Window int64
}

// Impression is one ad an edge showed a visitor, for frequency capping
// before the segment builder has counted it.
type Impression struct {
	Campaign uint64 // xxhash of the campaign id
	At       int64  // unix ms
}

// CapReached returns the index of the first of caps the visitor has
// reached at now, or -1. It counts times, the builder's record of the
// campaign's impressions to the visitor (ascending), and the edge's recent
// impressions of the campaign (by hash) from lastSeen on, the last moment
// the builder applied: one in that very millisecond may be counted twice,
// which errs on the safe side.
func CapReached(caps []Cap, now int64, times []int64, lastSeen int64, recent []Impression, campaign uint64) int {
	for k, c := range caps {
		since := now - c.Window
		i, _ := slices.BinarySearch(times, since)
		n := len(times) - i
		for _, imp := range recent {
			if imp.Campaign == campaign && imp.At >= since && imp.At >= lastSeen {
				n++
			}
		}
		if n >= c.Count {
			return k
		}
	}
	return -1
}
