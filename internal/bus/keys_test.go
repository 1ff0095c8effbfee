package bus_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
)

func TestKeys(t *testing.T) {
	c := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := c.JS.KeyValue(ctx, bus.BucketSyndState)
	if err != nil {
		t.Fatal(err)
	}
	list := func(filter string) []string {
		var got []string
		if err := bus.Keys(ctx, c.JS, bus.BucketSyndState, filter, func(k string) error { got = append(got, k); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	if got := list(">"); len(got) != 0 {
		t.Fatalf("an empty bucket lists %v", got)
	}
	// More keys than one fetch, several revisions of some, deleted ones.
	var want []string
	for i := range 3000 {
		k := fmt.Sprintf("p%d.u%04d", i%3, i)
		if _, err := kv.Put(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
		switch {
		case i%10 == 0:
			if err := kv.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			continue
		case i%7 == 0:
			if _, err := kv.Put(ctx, k, []byte("v2")); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, k)
	}
	slices.Sort(want)
	if got := list(">"); !slices.Equal(got, want) {
		t.Fatalf("listed %d keys, want %d", len(got), len(want))
	}
	if got := list("*.u0007"); !slices.Equal(got, []string{"p1.u0007"}) {
		t.Errorf("filtered: %v", got)
	}
	// A failing fn ends the listing with its error.
	stop := fmt.Errorf("enough")
	n := 0
	if err := bus.Keys(ctx, c.JS, bus.BucketSyndState, ">", func(string) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("fn failing: %v after %d keys", err, n)
	}
}
