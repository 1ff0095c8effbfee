package segments

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// BenchmarkBuilderBacklog applies a backlog of page loads (a search, then
// up to three impressions, of one visitor at one moment) with a builder,
// server included: it reports CPU seconds per event of the whole process
// (the embedded server's writes and deliveries are part of the cost), NATS
// messages per event and record writes per event. Wall time on a shared
// machine says little; CPU time and message counts say more.
func BenchmarkBuilderBacklog(b *testing.B) {
	conn := bustest.Start(b)
	const visitors, loads = 4000, 4000
	var events []event.Event
	var visitorOf []string
	ts := now()
	for i := range loads {
		v := strconv.Itoa(i * 7919 % visitors)
		events = append(events, event.Event{Kind: event.KindSearch, TS: ts, Consent: profile, Query: "plumber near me", Lang: "ru"})
		visitorOf = append(visitorOf, v)
		for j := range i % 4 {
			events = append(events, event.Event{Kind: event.KindImpression, TS: ts, Consent: profile, Campaign: "camp" + strconv.Itoa(j)})
			visitorOf = append(visitorOf, v)
		}
	}
	live := taxonomy.NewLive(nil)
	var cpu time.Duration
	var msgs, writes, applied uint64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		info, err := conn.JS.Stream(context.Background(), "ADSYN_EVENTS")
		if err != nil {
			b.Fatal(err)
		}
		start := info.CachedInfo().State.LastSeq + 1
		// Visitors new to each round: a round measures first writes, not
		// the conflicts of a builder that holds none of the records.
		for k := range events {
			events[k].ID = event.ID{}
			events[k].Visitor = "r" + strconv.Itoa(i) + "-" + visitorOf[k]
		}
		publish(b, conn, events...)
		bld, err := NewBuilder(conn, live, WithConsumer("bench"+strconv.Itoa(i)), WithStartSequence(start))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		s0, c0 := conn.NC.Stats(), processCPU()
		go func() { done <- bld.Run(ctx) }()
		deadline := time.Now().Add(time.Minute)
		for bld.Stats().Applied < uint64(len(events)) {
			if time.Now().After(deadline) {
				b.Fatalf("applied %d of %d", bld.Stats().Applied, len(events))
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		s1, c1 := conn.NC.Stats(), processCPU()
		cpu += c1 - c0
		msgs += s1.InMsgs + s1.OutMsgs - s0.InMsgs - s0.OutMsgs
		st := bld.Stats()
		writes, applied = writes+st.Writes, applied+st.Applied
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(applied), "cpu-µs/event")
	b.ReportMetric(float64(msgs)/float64(applied), "msgs/event")
	b.ReportMetric(float64(writes)/float64(applied), "writes/event")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
