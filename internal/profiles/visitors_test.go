package profiles_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/segments"
)

// linkedUser registers a user whose browser is linked to visitor, whose
// record in adsyn_segments holds something.
func linkedUser(t *testing.T, ctx context.Context, conn *bus.Conn, store *profiles.Store, visitor string) string {
	t.Helper()
	var pt profiles.Patch
	if err := json.Unmarshal([]byte(`{"name":"Linked","consents":{"link_visitor":true}}`), &pt); err != nil {
		t.Fatal(err)
	}
	p, err := store.Create(ctx, &pt, "test")
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := store.IssueLink(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.RedeemLink(ctx, token, visitor); err != nil {
		t.Fatal(err)
	}
	segs, err := conn.JS.KeyValue(ctx, bus.BucketSegments)
	if err != nil {
		t.Fatal(err)
	}
	rec := segments.Record{Visitor: visitor, LastSeen: 1700000000000, Langs: []string{"fr"}}
	if _, err := segs.Put(ctx, visitor, rec.AppendMsgpack(nil)); err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// Erasure goes through the visitor store: the record leaves the bucket and
// the store's cache at once, and the export showed it before.
func TestEraseThroughVisitors(t *testing.T) {
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ring, err := keyring.Parse(keyring.NewKeyLine(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	visitors, err := segments.NewKVStore(ctx, conn.JS, segments.WithCache(1<<20, time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer visitors.Close()
	store, err := profiles.NewStore(ctx, conn.JS, ring, profiles.WithVisitors(visitors))
	if err != nil {
		t.Fatal(err)
	}
	const visitor = "vis_erase0001"
	id := linkedUser(t, ctx, conn, store, visitor)

	x, err := store.Export(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec, ok := x.Visitor.(map[string]any); !ok || rec["v"] != visitor {
		t.Errorf("export's visitor record: %#v", x.Visitor)
	}
	// The cache takes a record asynchronously, and may drop one under
	// contention: read until it holds it.
	for try := 0; ; try++ {
		if _, err := visitors.Get(ctx, visitor); err != nil {
			t.Fatal(err)
		}
		if _, ok := visitors.Cached(visitor); ok {
			break
		}
		if try == 100 {
			t.Fatal("the record was not cached; the test proves nothing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := store.Erase(ctx, id); err != nil {
		t.Fatal(err)
	}
	if rec, ok := visitors.Cached(visitor); ok && rec != nil {
		t.Errorf("the erased visitor's record is still cached: %+v", rec)
	}
	if _, err := visitors.Get(ctx, visitor); !errors.Is(err, segments.ErrNotFound) {
		t.Errorf("visitor record after erasure: %v", err)
	}
	segs, _ := conn.JS.KeyValue(ctx, bus.BucketSegments)
	if _, err := segs.Get(ctx, visitor); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("visitor record in the bucket after erasure: %v", err)
	}
}

// Without a visitor store, a user with a linked record is neither erased
// nor exported by halves: both fail and nothing is deleted.
func TestEraseWithoutVisitorsFailsClosed(t *testing.T) {
	ctx, conn, store := newStore(t)
	const visitor = "vis_closed001"
	id := linkedUser(t, ctx, conn, store, visitor)
	if _, err := store.Export(ctx, id); !errors.Is(err, profiles.ErrNoVisitors) {
		t.Errorf("export: %v, want ErrNoVisitors", err)
	}
	if err := store.Erase(ctx, id); !errors.Is(err, profiles.ErrNoVisitors) {
		t.Errorf("erase: %v, want ErrNoVisitors", err)
	}
	if p, err := store.Get(ctx, id); err != nil || p.LinkedVisitor != visitor {
		t.Errorf("profile after a refused erasure: %v", err)
	}
}
