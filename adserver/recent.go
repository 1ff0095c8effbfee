package adserver

import "sync"

// recent remembers the last impressions this edge showed each visitor, so
// frequency caps hold before the segment builder has counted them. It is a
// fixed, direct-mapped table: a visitor pushed out by another only loses
// this short-term memory, never correctness of the builder's counts.
type recent struct {
	shards [64]recentShard
}

const (
	recentSlots = 512 // per shard
	recentDepth = 8   // impressions kept per visitor
)

type recentShard struct {
	mu    sync.Mutex
	slots [recentSlots]recentSlot
	_     [40]byte // keep neighbouring shards' locks off one cache line
}

type recentSlot struct {
	visitor uint64
	next    uint8
	imps    [recentDepth]Impression
}

func (r *recent) slot(visitor uint64) (*recentShard, *recentSlot) {
	sh := &r.shards[visitor%uint64(len(r.shards))]
	return sh, &sh.slots[(visitor>>6)%recentSlots]
}

// get appends the visitor's remembered impressions to dst.
func (r *recent) get(visitor uint64, dst []Impression) []Impression {
	sh, s := r.slot(visitor)
	sh.mu.Lock()
	if s.visitor == visitor {
		for _, imp := range s.imps {
			if imp.At != 0 {
				dst = append(dst, imp)
			}
		}
	}
	sh.mu.Unlock()
	return dst
}

// add remembers one impression.
func (r *recent) add(visitor uint64, imp Impression) {
	sh, s := r.slot(visitor)
	sh.mu.Lock()
	if s.visitor != visitor {
		*s = recentSlot{visitor: visitor}
	}
	s.imps[s.next%recentDepth] = imp
	s.next++
	sh.mu.Unlock()
}
