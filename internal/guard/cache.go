package guard

import (
	"hash/maphash"
	"strings"
	"sync/atomic"
)

// MaxCachedText is the longest text a Cache remembers; a longer one is
// judged afresh each time, so the cache holds at most slots×this many bytes.
const MaxCachedText = 512

// Cache remembers the verdicts of a Guard for texts it judged recently. A
// verdict is a pure function of the text (the Guard is immutable), and an
// entry is found only by the exact text, never by its hash alone, so a
// cached answer is the answer the Guard gives: pages repeat, and the same
// path, referrer or query need not be folded and scanned on every hit.
//
// It is direct-mapped under a random seed: a text evicts the one in its
// slot, and nobody can choose texts that fight for one slot. A Cache is
// safe for concurrent use; a hit allocates nothing, a miss one entry.
type Cache struct {
	g     *Guard
	seed  maphash.Seed
	slots []atomic.Pointer[verdict]
	mask  uint64
}

type verdict struct {
	text     string
	category string
	ok       bool
}

// NewCache returns a cache of g's verdicts with at least size slots
// (rounded up to a power of two, at least 1).
func NewCache(g *Guard, size int) *Cache {
	n := 1
	for n < size {
		n <<= 1
	}
	return &Cache{g: g, seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[verdict], n), mask: uint64(n - 1)}
}

// Guard returns the guard whose verdicts c remembers.
func (c *Cache) Guard() *Guard { return c.g }

// Sensitive is Guard.Sensitive, remembered; text is copied when it is
// remembered, never retained.
func (c *Cache) Sensitive(text string) (category string, ok bool) {
	if len(text) > MaxCachedText {
		return c.g.Sensitive(text)
	}
	slot := &c.slots[maphash.String(c.seed, text)&c.mask]
	if v := slot.Load(); v != nil && v.text == text {
		return v.category, v.ok
	}
	category, ok = c.g.Sensitive(text)
	// A copy: text may be a view of memory the caller reuses.
	slot.Store(&verdict{text: strings.Clone(text), category: category, ok: ok})
	return category, ok
}

// SensitiveBytes is Guard.SensitiveBytes, remembered; text is copied when
// it is remembered, never retained.
func (c *Cache) SensitiveBytes(text []byte) (category string, ok bool) {
	if len(text) > MaxCachedText {
		return c.g.SensitiveBytes(text)
	}
	slot := &c.slots[maphash.Bytes(c.seed, text)&c.mask]
	if v := slot.Load(); v != nil && v.text == string(text) {
		return v.category, v.ok
	}
	category, ok = c.g.SensitiveBytes(text)
	slot.Store(&verdict{text: string(text), category: category, ok: ok})
	return category, ok
}
