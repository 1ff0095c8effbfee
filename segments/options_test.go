package segments

import (
	"slices"
	"testing"
	"time"
)

// TestOptionsPerConstructor: each option is taken by exactly the
// constructors that read it; any other refuses it at compile time.
func TestOptionsPerConstructor(t *testing.T) {
	const B, S, H, O = "builder", "store", "handler", "optout"
	for _, tc := range []struct {
		name string
		opt  any
		for_ []string
	}{
		{"WithLogger", WithLogger(nil), []string{B, S, H, O}},
		{"WithMetrics", WithMetrics(nil), []string{B, S, O}},
		{"WithPolicy", WithPolicy(DefaultPolicy()), []string{B, H}},
		{"WithHalfLife", WithHalfLife(time.Hour), []string{B, H}},
		{"WithPartitions", WithPartitions(16), []string{B}},
		{"WithWindow", WithWindow(time.Millisecond, 1), []string{B}},
		{"WithMaxInflight", WithMaxInflight(1), []string{B}},
		{"WithConsumer", WithConsumer("c"), []string{B}},
		{"WithStartSequence", WithStartSequence(1), []string{B}},
		{"WithRecordTTL", WithRecordTTL(0), []string{B}},
		{"WithTakeover", WithTakeover(10 * time.Second), []string{B}},
		{"WithCache", WithCache(1<<20, time.Second, time.Second), []string{S}},
		{"WithWarmCache", WithWarmCache(true), []string{S}},
		{"WithTimeout", WithTimeout(time.Second), []string{S, O}},
		{"WithSharedTaxonomy", WithSharedTaxonomy(nil), []string{H}},
	} {
		_, b := tc.opt.(BuilderOption)
		_, s := tc.opt.(StoreOption)
		_, h := tc.opt.(HandlerOption)
		_, o := tc.opt.(OptOutOption)
		var got []string
		for _, x := range []struct {
			ok   bool
			name string
		}{{b, B}, {s, S}, {h, H}, {o, O}} {
			if x.ok {
				got = append(got, x.name)
			}
		}
		if !slices.Equal(got, tc.for_) {
			t.Errorf("%s is taken by %v, want %v", tc.name, got, tc.for_)
		}
	}
}
