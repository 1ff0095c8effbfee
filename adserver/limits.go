package adserver

import (
	"sync"

	"github.com/adsyn/adsyn/internal/event"
)

// uncharged says why an answer or beacon was served but not counted or
// charged (adsyn_ad_uncharged_total{reason}).
type uncharged uint8

const (
	charged        uncharged = iota
	replay                   // a token's beacon or click seen before
	visitorCeiling           // the visitor's charged impressions this minute are used up
	numUncharged
)

var unchargedReasons = [numUncharged]string{replay: "replay", visitorCeiling: "visitor_ceiling"}

// defaultCountedMax bounds each generation of counted: about 24 MB.
const defaultCountedMax = 1 << 20

// counted remembers which tracked events (one id per ad answer and kind)
// this edge has published, for at least the token lifetime, so a replayed
// /imp or /click is answered but never counted twice, however long after
// the stream's dedupe window. Two generations rotate every lifetime: an
// entry lives between one and two lifetimes. The size is bounded: a full
// generation rotates early, which only shortens the memory.
type counted struct {
	mu       sync.Mutex
	lifetime int64 // ms
	max      int   // entries per generation
	started  int64 // ms when cur began
	begun    bool
	cur      map[event.ID]uncharged
	prev     map[event.ID]uncharged
	early    int // rotations forced by size, for the metric
}

func newCounted(lifetimeMS int64, max int) *counted {
	return &counted{lifetime: lifetimeMS, max: max, cur: map[event.ID]uncharged{}, prev: map[event.ID]uncharged{}}
}

// first records id at now and reports charged when it is new, or else why
// it is not to be counted: replay, or the reason given to mark.
func (c *counted) first(id event.ID, now int64) uncharged {
	return c.put(id, now, replay)
}

// mark records id as not to be counted for reason, unless it is known.
func (c *counted) mark(id event.ID, now int64, reason uncharged) {
	c.put(id, now, reason)
}

func (c *counted) put(id event.ID, now int64, reason uncharged) uncharged {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.begun {
		c.started, c.begun = now, true
	}
	if now-c.started >= c.lifetime || len(c.cur) >= c.max {
		if len(c.cur) >= c.max {
			c.early++
		}
		c.prev, c.cur = c.cur, c.prev
		clear(c.cur)
		c.started = now
	}
	if why, ok := c.cur[id]; ok {
		return why
	}
	if why, ok := c.prev[id]; ok {
		return why
	}
	c.cur[id] = reason
	if reason == replay {
		return charged // new: the next one is the replay
	}
	return reason
}

func (c *counted) rotatedEarly() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return float64(c.early)
}

// ceiling counts each visitor's charged impressions in the current minute
// on this edge. Shards keep their own minute and forget the last one
// wholesale, so memory is bounded by the visitors of one minute.
type ceiling struct {
	perMinute uint32
	shards    [64]ceilingShard
}

type ceilingShard struct {
	mu     sync.Mutex
	minute int64
	n      map[uint64]uint32
	_      [40]byte // keep neighbouring shards' locks off one cache line
}

func newCeiling(perMinute int) *ceiling {
	c := &ceiling{perMinute: uint32(perMinute)}
	for i := range c.shards {
		c.shards[i].n = map[uint64]uint32{}
	}
	return c
}

// charge counts one impression of the visitor (by hash) at now (unix ms)
// and reports whether it is within the ceiling; one over it is not counted.
func (c *ceiling) charge(visitor uint64, now int64) bool {
	if c == nil {
		return true
	}
	sh := &c.shards[visitor%uint64(len(c.shards))]
	minute := now / 60_000
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.minute != minute {
		clear(sh.n)
		sh.minute = minute
	}
	n := sh.n[visitor]
	if n >= c.perMinute {
		return false
	}
	sh.n[visitor] = n + 1
	return true
}
