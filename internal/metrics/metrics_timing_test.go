package metrics

import (
	"math"
	"sort"
	"sync/atomic"
	"testing"
)

// handHistogram is the hand-written histogram internal/metrics had before
// client_golang, kept here as the baseline twin of BenchmarkObserve.
type handHistogram struct {
	bounds []float64
	counts []atomic.Uint64
	sum    atomic.Uint64
}

func (h *handHistogram) observe(v float64) {
	h.counts[sort.SearchFloat64s(h.bounds, v)].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// A pixel hit observes its latency once and counts itself once; these are
// the two metric operations on the hot path.
func BenchmarkObserve(b *testing.B) {
	const v = 42e-6 // a typical pixel latency
	b.Run("client_golang", func(b *testing.B) {
		h := NewRegistry().Histogram("adsyn_x_seconds", "X.", EdgeBuckets)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.Observe(v)
			}
		})
	})
	b.Run("baseline_hand_written", func(b *testing.B) {
		h := &handHistogram{bounds: EdgeBuckets, counts: make([]atomic.Uint64, len(EdgeBuckets)+1)}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.observe(v)
			}
		})
	})
}

func BenchmarkCounterInc(b *testing.B) {
	c := NewRegistry().Counter("adsyn_x_total", "X.")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}
