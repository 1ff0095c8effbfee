package segments

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

func newStore(tb testing.TB, conn *bus.Conn, opts ...StoreOption) *KVStore {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := NewKVStore(ctx, conn.JS, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

func putRecord(tb testing.TB, conn *bus.Conn, r Record) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := conn.JS.KeyValue(ctx, bus.BucketSegments)
	if err != nil {
		tb.Fatal(err)
	}
	rev, err := kv.Put(ctx, r.Visitor, r.AppendMsgpack(nil))
	if err != nil {
		tb.Fatal(err)
	}
	return rev
}

func TestKVStore(t *testing.T) {
	srv := bustest.StartServer(t)
	conn := srv.Connect(t)
	s := newStore(t, conn)
	ctx := context.Background()

	if _, err := s.Get(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of nobody: %v", err)
	}
	if _, ok := s.Cached("nobody"); !ok {
		t.Error("no negative entry")
	}
	if _, err := s.Get(ctx, "bad..id"); !errors.Is(err, ErrInvalidVisitor) {
		t.Errorf("Get of an invalid id: %v", err)
	}

	// A record written later replaces the negative entry through the watch.
	putRecord(t, conn, Record{Visitor: "nobody", Events: 1})
	eventually(t, 5*time.Second, "watch update of a negative entry", func() bool {
		r, err := s.Get(ctx, "nobody")
		return err == nil && r.Events == 1
	})

	putRecord(t, conn, Record{Visitor: "v1", Events: 1, Langs: []string{"ru"}})
	r := warm(t, s, "v1")
	if r.Events != 1 {
		t.Fatalf("Get: %+v", r)
	}
	// A builder's write reaches the cached copy.
	putRecord(t, conn, Record{Visitor: "v1", Events: 2})
	eventually(t, 5*time.Second, "watch update", func() bool {
		r, _ := s.Get(ctx, "v1")
		return r != nil && r.Events == 2
	})

	// Another process's cache sees a deletion.
	other := newStore(t, srv.Connect(t))
	warm(t, other, "v1")
	if err := s.Delete(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Cached("v1"); ok {
		t.Error("Delete left the cache entry")
	}
	if _, _, ok := readRecord(t, conn, "v1"); ok {
		t.Error("Delete left the record")
	}
	eventually(t, 5*time.Second, "the other cache to drop the record", func() bool {
		_, ok := other.Cached("v1")
		return !ok
	})
	if _, err := other.Get(ctx, "v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("other process after delete: %v", err)
	}
}

func TestBuilderAfterErasure(t *testing.T) {
	conn := bustest.Start(t)
	live := taxonomy.NewLive(nil)
	startBuilder(t, conn, live, WithWindow(5*time.Millisecond, 64))
	s := newStore(t, conn)
	ts := now()
	publish(t, conn, event.Event{Kind: event.KindSearch, TS: ts - 1000, Visitor: "gone", Consent: profile, Query: "plumber"})
	eventually(t, 10*time.Second, "record", func() bool { _, _, ok := readRecord(t, conn, "gone"); return ok })
	if err := s.Delete(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	// An event captured before the erasure and read after it does not bring
	// the record back; a later one starts a new record.
	publish(t, conn,
		event.Event{Kind: event.KindSearch, TS: ts - 500, Visitor: "gone", Consent: profile, Query: "electrician"},
		event.Event{Kind: event.KindSearch, TS: now() + 1000, Visitor: "gone", Consent: profile, Query: "wedding photographer"},
	)
	eventually(t, 10*time.Second, "new record", func() bool { _, _, ok := readRecord(t, conn, "gone"); return ok })
	r, _, _ := readRecord(t, conn, "gone")
	for _, sc := range r.Segments {
		if sc.ID == "home.electrical" || sc.ID == "home.plumbing" {
			t.Errorf("a segment from before the erasure came back: %+v", r.Segments)
		}
	}
	if r.Events != 1 || r.Since == 0 {
		t.Errorf("record %+v", r)
	}
}

// warm reads visitor until the store caches it. (A read that crosses a
// watched change is answered but not cached, so one Get may not do.)
func warm(tb testing.TB, s *KVStore, visitor string) *Record {
	tb.Helper()
	var r *Record
	eventually(tb, 5*time.Second, "cached "+visitor, func() bool {
		var err error
		if r, err = s.Get(context.Background(), visitor); err != nil {
			tb.Fatal(err)
		}
		c, ok := s.Cached(visitor)
		return ok && c == r
	})
	return r
}

func TestWarmCacheFillsFromWatch(t *testing.T) {
	srv := bustest.StartServer(t)
	conn := srv.Connect(t)
	cold := newStore(t, conn)
	hot := newStore(t, conn, WithWarmCache(true))
	putRecord(t, conn, Record{Visitor: "fresh", Events: 3})
	eventually(t, 5*time.Second, "the warm store to cache a record it never read", func() bool {
		r, ok := hot.Cached("fresh")
		return ok && r != nil && r.Events == 3
	})
	if _, ok := cold.Cached("fresh"); ok {
		t.Error("without WithWarmCache the watch must not fill the cache")
	}
}

func TestSharedTaxonomyReachesOtherProcesses(t *testing.T) {
	srv := bustest.StartServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := taxonomy.NewLive(nil), taxonomy.NewLive(nil)
	sa, err := ShareTaxonomy(ctx, srv.Connect(t).JS, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ShareTaxonomy(ctx, srv.Connect(t).JS, b, nil); err != nil {
		t.Fatal(err)
	}
	f := taxonomy.Default().File()
	f.Segments = f.Segments[:10]
	if _, err := sa.Put(ctx, f); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the other process to follow", func() bool { return b.Load().Len() == 10 })
	// A sensitive segment is refused before it is stored.
	bad := f
	bad.Segments = append(append([]taxonomy.Segment(nil), f.Segments...), taxonomy.Segment{ID: "wellness.therapy", Name: "Depression therapy", Category: f.Segments[0].Category})
	if _, err := sa.Put(ctx, bad); err == nil {
		t.Fatal("a sensitive taxonomy was stored")
	}
	// A restart loads what was stored.
	c := taxonomy.NewLive(nil)
	if _, err := ShareTaxonomy(ctx, srv.Connect(t).JS, c, nil); err != nil {
		t.Fatal(err)
	}
	if c.Load().Len() != 10 {
		t.Fatalf("restart holds %d segments, want 10", c.Load().Len())
	}
}

// Peek answers from the cache alone; Load reads the bucket and fills the
// cache, so that Peek then knows the record, or that there is none.
func TestPeekAndLoad(t *testing.T) {
	srv := bustest.StartServer(t)
	conn := srv.Connect(t)
	// Written before the store starts: its watch (updates only) never sees
	// it, so no change races the read (a read that races one is not cached).
	putRecord(t, conn, Record{Visitor: "v1", Events: 4})
	s := newStore(t, conn)
	ctx := context.Background()
	if r, known := s.Peek("v1"); known || r != nil {
		t.Fatalf("Peek of a record never read: %+v %v", r, known)
	}
	r, err := s.Load(ctx, "v1")
	if err != nil || r.Events != 4 {
		t.Fatalf("Load: %+v %v", r, err)
	}
	eventually(t, 5*time.Second, "Peek to know the loaded record", func() bool {
		r, known := s.Peek("v1")
		return known && r != nil && r.Events == 4
	})
	if _, err := s.Load(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of nobody: %v", err)
	}
	eventually(t, 5*time.Second, "Peek to know there is no record", func() bool {
		r, known := s.Peek("nobody")
		return known && r == nil
	})
	if _, err := s.Load(ctx, "bad..id"); !errors.Is(err, ErrInvalidVisitor) {
		t.Errorf("Load of an invalid id: %v", err)
	}
}
