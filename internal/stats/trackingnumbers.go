package stats

import (
	"sync/atomic"

	"github.com/adsyn/adsyn/internal/phone"
)

// TrackingNumbers maps call tracking numbers to campaigns, for
// WithTrackingNumbers, from a catalog that changes as a whole (a snapshot
// replaced on each change). The map is built once per catalog version, on
// the first lookup that sees it, so a lookup is one map read. Numbers are
// compared by their digits only (phone.Key): "+7 (495) 123-45-67" is
// "74951234567".
type TrackingNumbers[V comparable] struct {
	current func() V
	each    func(v V, add func(number, campaign string))
	built   atomic.Pointer[numberIndex[V]]
}

type numberIndex[V comparable] struct {
	version  V
	byDigits map[string]string
}

// NewTrackingNumbers follows the catalog whose version current returns; each
// calls add with every tracking number of version v and its campaign.
func NewTrackingNumbers[V comparable](current func() V, each func(v V, add func(number, campaign string))) *TrackingNumbers[V] {
	return &TrackingNumbers[V]{current: current, each: each}
}

// Campaign returns the campaign of a tracking number.
func (t *TrackingNumbers[V]) Campaign(number string) (string, bool) {
	v := t.current()
	ix := t.built.Load()
	if ix == nil || ix.version != v {
		ix = &numberIndex[V]{version: v, byDigits: map[string]string{}}
		t.each(v, func(number, campaign string) { ix.byDigits[phone.Key(number)] = campaign })
		t.built.Store(ix)
	}
	id, ok := ix.byDigits[phone.Key(number)]
	return id, ok
}
