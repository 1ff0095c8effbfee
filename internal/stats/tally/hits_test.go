package tally

import (
	"fmt"
	"testing"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/stats/audience"
)

// TestHitsCountAsHourAdd: a site's pageviews, searches and custom events
// tallied in two batches and merged into a record give the hour that
// audience.Hour.Add counts from the same events one by one: the same
// counts, and the same values where a breakdown stays within its limit
// (past it, a batch lets its most frequent values in first).
func TestHitsCountAsHourAdd(t *testing.T) {
	const hourMS = 1_700_000_000_000 / 3_600_000 * 3_600_000
	var evs []event.Event
	for i := range 3000 {
		e := event.Event{Kind: event.KindPageview, Site: "s1", TS: hourMS + int64(i),
			URL:      fmt.Sprintf("https://pub.example/p/%d?utm_source=src%d&utm_campaign=c%d", i%150, i%30, i%7),
			Referrer: fmt.Sprintf("https://ref%d.example/x", i%60), Lang: fmt.Sprint("l", i%30),
			Device: event.Device{Type: fmt.Sprint("t", i%10), OS: fmt.Sprint("o", i%15), Browser: fmt.Sprint("b", i%14)}, Country: fmt.Sprint("C", i%55)}
		switch i % 10 {
		case 7:
			e.Kind = event.KindSearch
		case 8:
			e.Kind, e.Name = event.KindCustom, fmt.Sprint("goal", i%70)
		}
		if i%3 != 0 {
			e.Visitor = fmt.Sprint("visitor", i%1000)
		}
		evs = append(evs, e)
	}
	var want audience.Hour
	for i := range evs {
		want.Add(&evs[i])
	}
	var rec Record
	f := NewFold()
	for part, batch := range [][]event.Event{evs[:1234], evs[1234:]} {
		tl := New(1, nil)
		for i := range batch {
			fact, ok := FactOf(&batch[i], 0)
			if !ok {
				t.Fatalf("event %d not counted", i)
			}
			tl.Add(&fact, 0, uint64(part*10_000+i+1), nil)
		}
		d := tl.Get(RecKey{ScopeSite, "s1", hourMS / 3_600_000})
		if d == nil {
			t.Fatal("no site delta")
		}
		if err := rec.Merge(ScopeSite, d, tl.Names(), 1000, f); err != nil {
			t.Fatal(err)
		}
	}
	got := rec.Audience
	if got == nil || got.Pageviews != want.Pageviews || got.Searches != want.Searches || got.Events != want.Events ||
		got.Visitors.Estimate() != want.Visitors.Estimate() {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for d := range got.Breakdowns {
		g, w := got.Breakdowns[d], want.Breakdowns[d]
		if g.Total() != w.Total() || len(g.Counts) != len(w.Counts) {
			t.Errorf("%s: total %d over %d values; want %d over %d", audience.Dimension(d), g.Total(), len(g.Counts), w.Total(), len(w.Counts))
		}
		if w.Other == 0 && fmt.Sprint(g.Top(1000)) != fmt.Sprint(w.Top(1000)) {
			t.Errorf("%s: %v\nwant %v", audience.Dimension(d), g.Top(1000), w.Top(1000))
		}
	}
	if want.Breakdowns[audience.Page].Other == 0 || want.Visitors.Estimate() == 0 {
		t.Fatal("the set fills no page past its limit, or has no visitors: it tests less than it says")
	}
}
