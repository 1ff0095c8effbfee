package privacy

import (
	"hash/maphash"
	"strings"
	"sync/atomic"
)

// maxKept is the longest value the kept cache remembers; a longer one is
// scrubbed afresh each time, so the cache holds at most slots×this bytes.
const maxKept = 512

// rule names a scrub rule whose "kept as it was" verdict is remembered.
type rule uint8

const (
	ruleURL   rule = iota + 1 // URL returned the value itself
	ruleClean                 // decoded, no sensitive term and no contact data (text, categories)
)

// keptCache remembers values a rule kept unchanged. Whether a value is kept
// is a function of the value alone (the guard's verdicts and the contact
// recognisers are pure, the allowlist fixed), and an entry matches only the
// exact value, never its hash alone; so a remembered value is one the rule
// keeps, and anything else is scrubbed in full. Pages repeat: most hits
// carry a URL, a search and labels seen a moment ago.
//
// It is direct-mapped under a random seed; safe for concurrent use; a hit
// allocates nothing.
type keptCache struct {
	seed  maphash.Seed
	slots []atomic.Pointer[keptValue]
	mask  uint64
}

type keptValue struct {
	rule  rule
	value string
}

func newKeptCache(size int) *keptCache {
	n := 1
	for n < size {
		n <<= 1
	}
	return &keptCache{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[keptValue], n), mask: uint64(n - 1)}
}

func (k *keptCache) slot(r rule, v string) *atomic.Pointer[keptValue] {
	return &k.slots[(maphash.String(k.seed, v)+uint64(r)*0x9E3779B97F4A7C15)&k.mask]
}

// has reports whether r is known to keep v as it is.
func (k *keptCache) has(r rule, v string) bool {
	if k == nil || len(v) > maxKept {
		return false
	}
	x := k.slot(r, v).Load()
	return x != nil && x.rule == r && x.value == v
}

// add remembers that r keeps v; v is copied, since it may be a view of
// request memory.
func (k *keptCache) add(r rule, v string) {
	if k == nil || len(v) > maxKept {
		return
	}
	k.slot(r, v).Store(&keptValue{rule: r, value: strings.Clone(v)})
}
