package demo_test

import (
	"context"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/demo"
	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/profiles"
)

// The demo users load once, with the consents the demo shows: a second
// load, as at every `serve --demo` restart, registers nobody.
func TestUsersLoadOnce(t *testing.T) {
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ring, err := keyring.Parse(keyring.NewKeyLine(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	store, err := profiles.NewStore(ctx, conn.JS, ring)
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Users(ctx, store, nil); err != nil {
		t.Fatal(err)
	}
	var found []profiles.Public
	for deadline := time.Now().Add(10 * time.Second); len(found) == 0 && time.Now().Before(deadline); {
		found = store.Search(profiles.Query{Name: "Anna Petrova"})
		time.Sleep(20 * time.Millisecond)
	}
	if len(found) != 1 {
		t.Fatalf("Anna in the search index: %d", len(found))
	}
	if err := demo.Users(ctx, store, nil); err != nil {
		t.Fatal(err)
	}
	consents := map[string]bool{}
	n := 0
	err = store.EachUser(ctx, func(id string) error {
		n++
		p, err := store.Latest(ctx, id)
		if err != nil {
			return err
		}
		consents[p.Name] = p.Consented(profiles.Syndication)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || !consents["Anna Petrova"] || consents["Boris Ivanov"] {
		t.Errorf("%d users, syndication consents %v; want Anna yes, Boris no", n, consents)
	}
}
