package segments

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

func TestBuilderAppliesEvents(t *testing.T) {
	conn := bustest.Start(t)
	b := startBuilder(t, conn, taxonomy.NewLive(nil), WithWindow(10*time.Millisecond, 100))
	ts := now()
	publish(t, conn,
		event.Event{Kind: event.KindSearch, TS: ts, Visitor: "v1", Consent: profile, Query: "срочно нужен сантехник qx7secret", Lang: "ru-RU"},
		event.Event{Kind: event.KindPageview, TS: ts + 1, Visitor: "v1", Consent: profile, URL: "https://market.example/services/plumbing?ref=x", Lang: "ru"},
		event.Event{Kind: event.KindImpression, TS: ts + 2, Visitor: "v1", Consent: profile, Campaign: "camp1", URL: "https://pub.example/"},
		event.Event{Kind: event.KindSearch, TS: ts + 3, Visitor: "v1", Consent: profile, Query: "психолог депрессия qx7secret"},
		event.Event{Kind: event.KindSearch, TS: ts + 4, Visitor: "v1", Consent: 0, Query: "wedding photographer"},
		event.Event{Kind: event.KindSearch, TS: ts + 5, Consent: profile, Query: "wedding photographer"},
	)
	eventually(t, 10*time.Second, "record", func() bool {
		r, _, ok := readRecord(t, conn, "v1")
		return ok && r.Events == 4
	})
	r, _, _ := readRecord(t, conn, "v1")
	ids := func() (out []string) {
		for _, s := range r.Segments {
			out = append(out, s.ID)
		}
		return out
	}()
	if !slices.Equal(ids, []string{"home", "home.plumbing", "lang.ru"}) {
		t.Errorf("segments %v", ids)
	}
	if len(r.Caps) != 1 || r.Caps[0].Campaign != "camp1" || len(r.Caps[0].Times) != 1 {
		t.Errorf("caps %+v", r.Caps)
	}
	if !slices.Equal(r.Langs, []string{"ru"}) || r.LastSeen != ts+2 {
		t.Errorf("langs %v last seen %d", r.Langs, r.LastSeen)
	}
	raw := r.AppendMsgpack(nil)
	if bytes.Contains(raw, []byte("qx7secret")) || bytes.Contains(raw, []byte("срочно")) {
		t.Errorf("the raw query is stored")
	}
	// A batch is counted once its acknowledgements are sent, which may be
	// after its record is visible.
	eventually(t, 10*time.Second, "the batch counted", func() bool { return b.Stats().Applied >= 4 })
	st := b.Stats()
	if st.SkippedConsent != 1 || st.SkippedVisitor != 1 || st.Sensitive != 1 || st.Applied != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestNoProfileConsentChangesNothing(t *testing.T) {
	conn := bustest.Start(t)
	b := startBuilder(t, conn, taxonomy.NewLive(nil), WithWindow(10*time.Millisecond, 100))
	publish(t, conn, event.Event{Kind: event.KindSearch, TS: now(), Visitor: "held", Consent: profile, Query: "plumber"})
	eventually(t, 10*time.Second, "first record", func() bool { _, _, ok := readRecord(t, conn, "held"); return ok })
	before, rev, _ := readRecord(t, conn, "held")

	var evs []event.Event
	// Everything but BuildProfile, some of it, and nothing at all.
	for _, cs := range []consent.Set{consent.All.Without(consent.BuildProfile), profile.Without(consent.BuildProfile), 0} {
		for _, v := range []string{"held", "fresh"} {
			evs = append(evs,
				event.Event{Kind: event.KindSearch, TS: now(), Visitor: v, Consent: cs, Query: "wedding photographer", Lang: "en"},
				event.Event{Kind: event.KindPageview, TS: now(), Visitor: v, Consent: cs, URL: "https://x.example/services/cleaning"},
				event.Event{Kind: event.KindImpression, TS: now(), Visitor: v, Consent: cs, Campaign: "c9"},
			)
		}
	}
	publish(t, conn, evs...)
	eventually(t, 10*time.Second, "events read", func() bool { return b.Stats().SkippedConsent == uint64(len(evs)) })
	after, rev2, _ := readRecord(t, conn, "held")
	if rev2 != rev || !equalRecords(before, after) {
		t.Errorf("record changed: rev %d → %d\n%+v\n%+v", rev, rev2, before, after)
	}
	if _, _, ok := readRecord(t, conn, "fresh"); ok {
		t.Errorf("a record was created without consent")
	}
}

func equalRecords(a, b *Record) bool { return bytes.Equal(a.AppendMsgpack(nil), b.AppendMsgpack(nil)) }

// TestTwoBuildersLoseNoUpdate has two builders share the work and race on
// the same records. It first forces the race: one visitor's events, one at
// a time, so that whichever builder takes the next one writes over a
// revision the other has moved on; it goes on until a compare-and-set
// conflict has been counted, and fails if none ever is. Then a concurrent
// load. No event may be lost either way.
func TestTwoBuildersLoseNoUpdate(t *testing.T) {
	srv := bustest.StartServer(t)
	live := taxonomy.NewLive(nil)
	// Same partitions, same durable consumers: the builders share the work
	// and race on the same records.
	b1 := startBuilder(t, srv.Connect(t), live, WithWindow(2*time.Millisecond, 16))
	b2 := startBuilder(t, srv.Connect(t), live, WithWindow(3*time.Millisecond, 16))
	pub := srv.Connect(t)
	applied := func() uint64 { return b1.Stats().Applied + b2.Stats().Applied }
	conflicts := func() uint64 { return b1.Stats().Conflicts + b2.Stats().Conflicts }
	want := map[string]uint64{}

	const contested, maxContested = "contested", 500
	for conflicts() == 0 {
		if want[contested] == maxContested {
			t.Fatalf("no compare-and-set conflict in %d alternating writes of one record: the race never happened", maxContested)
		}
		publish(t, pub, event.Event{Kind: event.KindSearch, TS: now() + int64(want[contested]), Visitor: contested, Consent: profile, Query: "plumber"})
		want[contested]++
		eventually(t, 10*time.Second, "the event applied", func() bool { return applied() >= want[contested] })
	}
	t.Logf("first conflict after %d writes of one record", want[contested])

	const visitors, rounds = 20, 30
	var wg sync.WaitGroup
	for r := range rounds {
		var evs []event.Event
		for v := range visitors {
			id := fmt.Sprintf("vis%d", v)
			for k := range 1 + (v+r)%3 {
				evs = append(evs, event.Event{Kind: event.KindSearch, TS: now() + int64(k), Visitor: id, Consent: profile, Query: "plumber"})
				want[id]++
			}
		}
		wg.Add(1)
		go func() { defer wg.Done(); publish(t, pub, evs...) }()
		if r%5 == 0 {
			wg.Wait()
		}
	}
	wg.Wait()
	var total uint64
	for _, n := range want {
		total += n
	}
	eventually(t, 30*time.Second, "all applied", func() bool { return applied() >= total })
	for id, n := range want {
		r, _, ok := readRecord(t, pub, id)
		if !ok || r.Events != n {
			t.Errorf("%s: %d events applied, want %d", id, r.Events, n)
		}
	}
	t.Logf("builder 1 %+v", b1.Stats())
	t.Logf("builder 2 %+v", b2.Stats())
}

func TestRecordTTL(t *testing.T) {
	conn := bustest.Start(t)
	startBuilder(t, conn, taxonomy.NewLive(nil), WithWindow(5*time.Millisecond, 64), WithRecordTTL(time.Second))
	publish(t, conn, event.Event{Kind: event.KindSearch, TS: now(), Visitor: "brief", Consent: profile, Query: "plumber"})
	eventually(t, 10*time.Second, "record", func() bool { _, _, ok := readRecord(t, conn, "brief"); return ok })
	eventually(t, 10*time.Second, "expiry", func() bool { _, _, ok := readRecord(t, conn, "brief"); return !ok })
}

// Data minimisation: the hit that issued a visitor id makes no record; the
// first hit that sends the cookie back does.
func TestBuilderWaitsForTheCookieToComeBack(t *testing.T) {
	conn := bustest.Start(t)
	b := startBuilder(t, conn, taxonomy.NewLive(nil), WithWindow(10*time.Millisecond, 100))
	ts := now()
	publish(t, conn,
		event.Event{Kind: event.KindPageview, TS: ts, Visitor: "once", NewVisitor: true, Consent: profile, URL: "https://market.example/services/plumbing"},
		event.Event{Kind: event.KindPageview, TS: ts, Visitor: "back", NewVisitor: true, Consent: profile, URL: "https://market.example/services/plumbing"},
	)
	eventually(t, 10*time.Second, "first hits read", func() bool { return b.Stats().SkippedNew == 2 })
	for _, v := range []string{"once", "back"} {
		if _, _, ok := readRecord(t, conn, v); ok {
			t.Errorf("a record for %s after its first, cookieless hit", v)
		}
	}
	publish(t, conn, event.Event{Kind: event.KindSearch, TS: ts + 1, Visitor: "back", Consent: profile, Query: "plumber"})
	eventually(t, 10*time.Second, "record once the cookie came back", func() bool {
		r, _, ok := readRecord(t, conn, "back")
		return ok && r.Events == 1
	})
	if _, _, ok := readRecord(t, conn, "once"); ok {
		t.Error("a record for a visitor never seen again")
	}
	// Counted after the record is visible, as above.
	eventually(t, 10*time.Second, "the batch counted", func() bool { st := b.Stats(); return st.Messages == 3 && st.Writes > 0 })
	if st := b.Stats(); st.SkippedNew != 2 || st.Applied != 1 || st.Writes != 1 {
		t.Errorf("stats %+v", st)
	}
}
