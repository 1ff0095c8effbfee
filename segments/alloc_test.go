//go:build !race

package segments

import (
	"context"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/guard"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

func TestStoreGetHitAllocs(t *testing.T) {
	conn := bustest.Start(t)
	s := newStore(t, conn)
	putRecord(t, conn, Record{Visitor: "hot", Events: 3})
	ctx := context.Background()
	warm(t, s, "hot")
	eventually(t, 5*time.Second, "negative entry", func() bool {
		_, _ = s.Get(ctx, "cold")
		_, ok := s.Cached("cold")
		return ok
	})
	if n := testing.AllocsPerRun(1000, func() {
		if r, err := s.Get(ctx, "hot"); err != nil || r.Events != 3 {
			t.Fatal("miss")
		}
	}); n != 0 {
		t.Errorf("Get on a hit: %v allocations", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = s.Get(ctx, "cold") }); n != 0 {
		t.Errorf("Get on a negative hit: %v allocations", n)
	}
}

func TestCoreAllocs(t *testing.T) {
	tax := taxonomy.Default()
	evs := []event.Event{
		{Kind: event.KindSearch, Query: "срочно нужен сантехник", Lang: "ru-RU", URL: "https://m.example/search?q=%D1%81%D0%B0%D0%BD"},
		{Kind: event.KindPageview, URL: "https://m.example/uslugi/santehnika", Categories: []string{"plumbing"}, Lang: "en"},
		{Kind: event.KindSearch, Query: "депрессия"},
	}
	dst := make([]taxonomy.Contribution, 0, 64)
	for i := range evs {
		if n := testing.AllocsPerRun(200, func() { dst, _ = tax.Match(dst[:0], &evs[i]) }); n != 0 {
			t.Errorf("Match(%d): %v allocations", i, n)
		}
	}
	if n := testing.AllocsPerRun(200, func() { guard.Sensitive("https://example.com/uslugi/psiholog?x=1") }); n != 0 {
		t.Errorf("Sensitive: %v allocations", n)
	}
}
