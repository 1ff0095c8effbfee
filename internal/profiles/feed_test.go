package profiles_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/profiles"
)

// The change feed as its readers see it: LatestChange gives each user's
// newest write or deletion with its revision, Follow hands out the same,
// EachUser lists who is stored.
func TestChangeFeed(t *testing.T) {
	ctx, _, store := newStore(t)
	create := func(body string) *profiles.Profile {
		t.Helper()
		var pt profiles.Patch
		if err := json.Unmarshal([]byte(body), &pt); err != nil {
			t.Fatal(err)
		}
		p, err := store.Create(ctx, &pt, "test")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	kept := create(`{"name":"Kept","email":"kept@example.org"}`)
	gone := create(`{"name":"Gone"}`)
	moved, err := store.Patch(ctx, kept.ID, &profiles.Patch{City: profiles.Optional[string]{Set: true, Value: "Oslo"}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Erase(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}

	c, err := store.LatestChange(ctx, kept.ID)
	if err != nil || c.Deleted || c.Err != nil || c.Version != moved.Version || c.Profile == nil || c.Profile.City != "Oslo" || c.Profile.Version != moved.Version {
		t.Errorf("latest change of a patched user: %+v, %v; want version %d, city Oslo", c, err, moved.Version)
	}
	if c.Profile != nil && c.Profile.Email != "" {
		t.Errorf("the feed opened a contact field: %q", c.Profile.Email)
	}
	c, err = store.LatestChange(ctx, gone.ID)
	if err != nil || !c.Deleted || c.Profile != nil || c.Version <= moved.Version {
		t.Errorf("latest change of an erased user: %+v, %v; want a deletion after version %d", c, err, moved.Version)
	}
	erasedAt := c.Version
	c, err = store.LatestChange(ctx, profiles.NewID())
	if err != nil || !c.Deleted || c.Version != 0 {
		t.Errorf("latest change of a user never stored: %+v, %v; want a deletion at version 0", c, err)
	}
	if err := c.Ack(); err == nil {
		t.Error("a change that was read, not followed, acked")
	}
	if _, err := store.LatestChange(ctx, "../x"); !errors.Is(err, profiles.ErrNotFound) {
		t.Errorf("bad id: %v", err)
	}

	var users []string
	if err := store.EachUser(ctx, func(id string) error { users = append(users, id); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(users, []string{kept.ID}) {
		t.Errorf("users %v, want only %s", users, kept.ID)
	}

	got := make(chan profiles.Change, 8)
	cc, err := store.Follow(ctx, profiles.Follower{Durable: "feed_test", AckWait: 5 * time.Second, MaxPending: 8}, func(c *profiles.Change) {
		if err := c.Ack(); err != nil {
			t.Errorf("ack: %v", err)
		}
		got <- *c
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	seen := map[string]profiles.Change{}
	for len(seen) < 2 {
		select {
		case c := <-got:
			seen[c.User] = c
		case <-ctx.Done():
			t.Fatalf("followed %d users of 2", len(seen))
		}
	}
	if c := seen[kept.ID]; c.Version != moved.Version || c.Profile == nil || c.Profile.City != "Oslo" {
		t.Errorf("followed change of the patched user: %+v", c)
	}
	if c := seen[gone.ID]; !c.Deleted || c.Version != erasedAt {
		t.Errorf("followed change of the erased user: %+v, want the deletion at %d", c, erasedAt)
	}
}

// newStore opens a profiles store with a fresh keyring on an embedded NATS.
func newStore(t *testing.T, opts ...profiles.Option) (context.Context, *bus.Conn, *profiles.Store) {
	t.Helper()
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	ring, err := keyring.Parse(keyring.NewKeyLine(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	store, err := profiles.NewStore(ctx, conn.JS, ring, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, conn, store
}
