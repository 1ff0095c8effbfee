package profiles_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/profiles"
)

// A PATCH sent with Sec-GPC: 1 is one write: the withdrawal and the change
// land in one revision, and the change feed carries one change for it.
func TestGPCPatchIsOneWrite(t *testing.T) {
	ctx, _, keys, store, c := startAPI(t)
	admin, _, _ := keys.Create(ctx, auth.Admin, "", "root")
	user, key := c.register(admin, `{"name":"Hedy","city":"Vienna","consents":{"syndication":true,"personalized_ads":true}}`)
	id := user.ID

	changes := make(chan profiles.Change, 64)
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	cc, err := store.Follow(fctx, profiles.Follower{Durable: "gpc_test", AckWait: 5 * time.Second, MaxPending: 64}, func(ch *profiles.Change) {
		_ = ch.Ack()
		if ch.User == id {
			changes <- *ch
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	next := func() profiles.Change {
		t.Helper()
		select {
		case ch := <-changes:
			return ch
		case <-ctx.Done():
			t.Fatal("no change on the feed")
			return profiles.Change{}
		}
	}
	registered := next()
	if registered.Version != user.Version {
		t.Fatalf("first change at %d, want the registration's %d", registered.Version, user.Version)
	}

	if code, body := c.do("PATCH", "/v1/users/"+id, key, []byte(`{"city":"Paris"}`), "Sec-GPC", "1"); code != 200 {
		t.Fatalf("PATCH with GPC: %d %s", code, body)
	}
	// A marker write after it: every change before the marker has arrived
	// when the marker has.
	code, body := c.do("PATCH", "/v1/users/"+id, key, []byte(`{"city":"Lyon"}`))
	if code != 200 {
		t.Fatalf("marker PATCH: %d %s", code, body)
	}
	marker, err := store.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var between []profiles.Change
	for ch := next(); ch.Version != marker.Version; ch = next() {
		between = append(between, ch)
	}
	if len(between) != 1 {
		t.Fatalf("the GPC PATCH made %d changes on the feed, want 1: %+v", len(between), between)
	}
	p := between[0].Profile
	if p == nil || p.City != "Paris" || p.Consented(profiles.Syndication) || p.Consented(profiles.PersonalizedAds) {
		t.Fatalf("the one change: %+v", p)
	}
	sources := map[string]int{}
	for _, st := range p.Consents {
		sources[st.Source]++
	}
	if sources["gpc"] != 2 {
		t.Errorf("statements by source %v, want the two withdrawals from gpc", sources)
	}

	// A request without anything left to withdraw writes nothing.
	before := marker.Version
	if code, _ := c.do("GET", "/v1/users/"+id, key, nil, "Sec-GPC", "1"); code != 200 {
		t.Fatalf("GET with GPC: %d", code)
	}
	if p, err := store.Get(ctx, id); err != nil || p.Version != before {
		t.Errorf("GET with GPC and nothing to withdraw wrote: revision %d, was %d (%v)", p.Version, before, err)
	}
}

// A PATCH that is refused still has its GPC honoured, in one write.
func TestGPCHonouredWhenPatchRefused(t *testing.T) {
	ctx, conn, keys, store, c := startAPI(t)
	admin, _, _ := keys.Create(ctx, auth.Admin, "", "root")
	kv, err := conn.JS.KeyValue(ctx, bus.BucketProfiles)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ body, code string }{
		{`{"extra":1}`, "400"},
		{`{"visibility":{"email":"public"}}`, "400"},
		{`{"consents":{"syndication":true}}`, "409"},
	} {
		user, key := c.register(admin, `{"name":"Ida","consents":{"syndication":true,"personalized_ads":true}}`)
		code, body := c.do("PATCH", "/v1/users/"+user.ID, key, []byte(tc.body), "Sec-GPC", "1")
		if strconv.Itoa(code) != tc.code {
			t.Errorf("%s: %d %s, want %s", tc.body, code, body, tc.code)
		}
		p, err := store.Get(ctx, user.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Consented(profiles.Syndication) || p.Consented(profiles.PersonalizedAds) {
			t.Errorf("%s: GPC not honoured: %+v", tc.body, p.ConsentState())
		}
		hist, err := kv.History(ctx, user.ID)
		if err != nil || len(hist) != 2 {
			t.Errorf("%s: %d revisions (%v), want the registration and one withdrawal", tc.body, len(hist), err)
		}
	}
}
