package stats

import (
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/stats/audience"
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

// siteMonth writes 30 days of a busy site's hourly records (an audience at
// its breakdowns' limits, 2,000 visitors an hour) and returns its range.
func siteMonth(b *testing.B, js jetstream.JetStream) (id string, from, to int64) {
	kv, err := js.KeyValue(context.Background(), bus.BucketStats)
	if err != nil {
		b.Fatal(err)
	}
	to = time.Now().Unix()/3600 + 1
	from = to - 720
	for h := from; h < to; h++ {
		rec := &tally.Record{Totals: Counters{Impressions: 1000}}
		aud := &audience.Hour{Pageviews: 8000}
		for d := range audience.NumDimensions {
			for i := range audience.Limits[d] {
				aud.Breakdowns[d].Add(d.String()+strconv.Itoa(i), 40, audience.Limits[d])
			}
		}
		for v := range 2000 {
			aud.Visitors.Add(strconv.FormatInt(h*1000+int64(v), 36))
		}
		rec.Audience = aud
		if _, err := kv.Put(context.Background(), tally.KeyOf(ScopeSite, "busy", h), rec.AppendMsgpack(nil)); err != nil {
			b.Fatal(err)
		}
	}
	return "busy", from, to
}

// BenchmarkSiteMonthRead is the baseline of BenchmarkSiteMonthByPage:
// reading the month's records without their audience.
func BenchmarkSiteMonthRead(b *testing.B) {
	js := bustest.Start(b).JS
	id, from, to := siteMonth(b, js)
	for b.Loop() {
		if _, err := readRange(context.Background(), js, ScopeSite, id, from, to, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSiteMonthByPage answers a site's 30-day hourly query with
// breakdown=page as the handler does, JSON included: 72,000 points.
func BenchmarkSiteMonthByPage(b *testing.B) {
	js := bustest.Start(b).JS
	id, from, to := siteMonth(b, js)
	q := Query{Scope: ScopeSite, ID: id, From: from, To: to, Audience: audience.Page, ByAudience: true}
	for b.Loop() {
		recs, err := readRange(context.Background(), js, ScopeSite, id, from, to, tally.WithAudience|tally.AudienceMaskOf(audience.Page))
		if err != nil {
			b.Fatal(err)
		}
		if rep := Build(q, recs); len(rep.Series) != 720*audience.Limits[audience.Page] || rep.WriteJSON(io.Discard) != nil {
			b.Fatalf("%d points", len(rep.Series))
		}
	}
}
