package device

import (
	"math/bits"
	"strings"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/adsyn/adsyn/internal/event"
)

// Cache remembers what Parse and IsBot said of recent header sets: browsers
// send a few thousand distinct User-Agents, and parsing one costs far more
// than hashing it. It is a fixed array of slots chosen by a hash of the
// hints; a slot holds one entry, replaced on a miss, so memory is bounded by
// CacheSlots entries of at most maxCachedHints bytes. A hit compares every
// hint byte for byte: the hash only picks the slot, so two header sets never
// share an answer. Safe for concurrent use; reads take no lock.
type Cache struct {
	slots [CacheSlots]atomic.Pointer[cached]
}

// CacheSlots is the number of entries a Cache holds.
const CacheSlots = 4096

// maxCachedHints bounds the hint bytes of one entry; longer sets are parsed
// every time (real browsers stay far below).
const maxCachedHints = 2048

type cached struct {
	hints [6]string // Hints fields, copied
	dev   event.Device
	bot   bool // IsBot(UA)
}

// Parse fills d as Parse does and reports IsBot(h.UA). d's strings stay
// valid after h's bytes are gone when the answer came from the cache, and
// point into h otherwise, as Parse's do.
func (c *Cache) Parse(h Hints, d *event.Device) (bot bool) {
	fields := [6][]byte{h.UA, h.CHUA, h.CHMobile, h.CHPlatform, h.CHPlatformVersion, h.CHModel}
	sum, size := xxhash.Sum64(h.UA), len(h.UA)
	for i, f := range fields[1:] {
		if len(f) > 0 { // most browsers send no hints: nothing to hash
			size += len(f)
			sum ^= bits.RotateLeft64(xxhash.Sum64(f)+uint64(i), 7*(i+1))
		}
	}
	slot := &c.slots[sum&(CacheSlots-1)]
	if e := slot.Load(); e != nil && e.matches(&fields) {
		*d = e.dev
		return e.bot
	}
	Parse(h, d)
	bot = IsBot(h.UA)
	if size <= maxCachedHints {
		e := &cached{bot: bot}
		for i, f := range fields {
			e.hints[i] = string(f)
		}
		e.dev = event.Device{Type: d.Type, OS: d.OS, Browser: d.Browser,
			OSVersion: strings.Clone(d.OSVersion), Model: strings.Clone(d.Model)}
		slot.Store(e)
	}
	return bot
}

func (e *cached) matches(fields *[6][]byte) bool {
	for i, f := range fields {
		if string(f) != e.hints[i] {
			return false
		}
	}
	return true
}
