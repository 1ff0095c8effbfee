package audience

import (
	"fmt"

	"github.com/axiomhq/hyperloglog"
	"github.com/cespare/xxhash/v2"
)

// Visitors estimates the distinct visitor ids seen: a HyperLogLog sketch of
// precision 14 (sparse while small: a few bytes a visitor; at most 16 KB).
// The zero value is empty and ready.
type Visitors struct {
	sk *hyperloglog.Sketch
}

func (v *Visitors) sketch() *hyperloglog.Sketch {
	if v.sk == nil {
		v.sk = hyperloglog.New14()
	}
	return v.sk
}

// Add counts a visitor id; "" (no consent to an id) is not a visitor.
func (v *Visitors) Add(visitor string) {
	if visitor != "" {
		v.sketch().InsertHash(Hash(visitor))
	}
}

// Hash is what the sketch keeps of a visitor id: hash it once, keep the
// hash, and count it later with AddHash.
func Hash(visitor string) uint64 { return xxhash.Sum64String(visitor) }

// AddHash counts a visitor id by its Hash.
func (v *Visitors) AddHash(h uint64) { v.sketch().InsertHash(h) }

// Merge adds o's visitors to v.
func (v *Visitors) Merge(o *Visitors) error {
	if o.sk == nil {
		return nil
	}
	if v.sk == nil {
		// A copy as it is: merged into an empty sparse sketch, a sparse one
		// would be sorted and rebuilt entry by entry.
		v.sk = o.sk.Clone()
		return nil
	}
	if err := v.sk.Merge(o.sk); err != nil {
		return fmt.Errorf("audience: merge visitors: %w", err)
	}
	return nil
}

// Estimate returns the estimated number of distinct visitors.
func (v *Visitors) Estimate() uint64 {
	if v.sk == nil {
		return 0
	}
	return v.sk.Estimate()
}

// MarshalBinary encodes the sketch (empty: no bytes).
func (v *Visitors) MarshalBinary() ([]byte, error) {
	if v.sk == nil {
		return nil, nil
	}
	return v.sk.MarshalBinary()
}

// UnmarshalBinary decodes what MarshalBinary made.
func (v *Visitors) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		v.sk = nil
		return nil
	}
	sk := hyperloglog.New14()
	if err := sk.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("audience: visitors sketch: %w", err)
	}
	v.sk = sk
	return nil
}
