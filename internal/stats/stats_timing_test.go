package stats

import (
	"strconv"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/stats/tally"
)

// benchMessages returns n events as messages of 512, the publisher's batch.
func benchMessages(n int) [][]byte {
	// 1,000 campaigns on 100 sites over 5 hours, as varied as a busy hour.
	per := n/9000 + 1
	mixes := make([]mix, 0, 1000)
	for i := range 1000 {
		mixes = append(mixes, mix{camp: "c" + strconv.Itoa(i), site: "s" + strconv.Itoa(i%100), hoursAgo: i % 5,
			imps: 2 * per, priced: 2 * per, viewable: 2 * per, clicks: per, convs: per, calls: per})
	}
	events := eventsOf(7, time.Now(), mixes...)[:n]
	var out [][]byte
	for len(events) > 0 {
		k := min(512, len(events))
		var b []byte
		for i := range events[:k] {
			b = events[i].AppendMsgpack(b)
		}
		out = append(out, b)
		events = events[k:]
	}
	return out
}

// BenchmarkDecode is the baseline of BenchmarkTally: decoding alone.
func BenchmarkDecode(b *testing.B) {
	msgs := benchMessages(100_000)
	b.ResetTimer()
	n := 0
	for b.Loop() {
		for _, m := range msgs {
			c, _ := event.DecodeBatch(m, func(*event.Event) error { return nil })
			n += c
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkTally decodes and counts events into record deltas, one fresh
// tally per 100,000 events as in a flush.
func BenchmarkTally(b *testing.B) {
	msgs := benchMessages(100_000)
	b.ResetTimer()
	n := 0
	var facts []tally.Fact
	for b.Loop() {
		t := tally.New(event.DefaultPartitions, cpmOf)
		for i, m := range msgs {
			facts = facts[:0]
			_, _ = event.DecodeBatch(m, func(e *event.Event) error {
				if f, ok := tally.FactOf(e, 0); ok {
					facts = append(facts, f)
				}
				return nil
			})
			for j := range facts {
				t.Add(&facts[j], i%16, uint64(i+1), nil)
			}
			n += len(facts)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
