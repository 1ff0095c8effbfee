package adserver

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/api/apitest"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/bus/bustest"
)

// TestReusedIDs: a deleted campaign's or site's id cannot be taken by
// another owner (its statistics are keyed by the id); its own owner may
// take it back; the tombstone never serves and the index keeps building.
func TestReusedIDs(t *testing.T) {
	srv := bustest.StartServer(t)
	ctx := testCtx(t)
	conn := srv.Connect(t)
	ne := startEdge(t, srv, "e1")
	keys, err := auth.NewKeys(ctx, conn.JS, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(ctx, conn.JS, keys, WithCatalog(ne.cat))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	mux := http.NewServeMux()
	h.Routes(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	key := func(role auth.Role, owner string) string {
		s, _, err := keys.Create(ctx, role, owner, "test")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	admin, m1, m2 := key(auth.Admin, ""), key(auth.Marketer, "a1"), key(auth.Marketer, "a2")
	p1, p2 := key(auth.Publisher, "p1"), key(auth.Publisher, "p2")
	expect := func(t *testing.T, method, path, k, body string, want int, contains ...string) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+k)
		res, err := apitest.Client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d %s; want %d", method, path, res.StatusCode, b, want)
		}
		for _, c := range contains {
			if !strings.Contains(string(b), c) {
				t.Fatalf("%s %s: %d %s; want it to hold %q", method, path, res.StatusCode, b, c)
			}
		}
	}
	campaign := func(id, adv string) string {
		return `{"id":"` + id + `","advertiser":"` + adv + `","name":"N","start":"2025-01-01T00:00:00Z","cpm":2}`
	}
	site := func(id, pub string) string {
		return `{"id":"` + id + `","publisher":"` + pub + `","name":"S","slots":[{"id":"side","sizes":["300x250"]}]}`
	}
	serves := func(want string) func() bool {
		return func() bool { return ne.ad(t, "site=s1&slot=side") == want }
	}

	expect(t, "POST", "/v1/advertisers", admin, `{"id":"a1","name":"A1"}`, 201)
	expect(t, "POST", "/v1/advertisers", admin, `{"id":"a2","name":"A2"}`, 201)
	expect(t, "POST", "/v1/sites", p1, site("s1", "p1"), 201)
	expect(t, "POST", "/v1/sites", p2, site("s2", "p2"), 201)
	expect(t, "POST", "/v1/campaigns", m1, campaign("c1", "a1"), 201)
	expect(t, "POST", "/v1/creatives", m1, `{"id":"cr1","advertiser":"a1","campaign":"c1","type":"image","sizes":["300x250"],
		"landing":"https://example.com/","image":"https://example.com/a.png"}`, 201)
	waitFor(t, "c1 serves", 5*time.Second, serves("c1"))

	// Deleted, c1 stops serving; its tombstone is no campaign to the index.
	expect(t, "DELETE", "/v1/campaigns/c1", m1, "", 204)
	expect(t, "DELETE", "/v1/sites/s2", p2, "", 204)
	waitFor(t, "c1 gone from the edge", 5*time.Second, serves(""))
	e, err := ne.cat.kv.Get(ctx, "gone.camp.c1")
	if err != nil {
		t.Fatalf("no tombstone for c1: %v", err)
	}
	var tomb struct {
		Owner   string    `json:"owner"`
		Deleted time.Time `json:"deleted"`
	}
	if err := json.Unmarshal(e.Value(), &tomb); err != nil || tomb.Owner != "a1" || tomb.Deleted.IsZero() {
		t.Fatalf("tombstone %s (%v): want owner a1 and a time", e.Value(), err)
	}
	if snap := ne.cat.Index().Snap; len(snap.Campaigns) != 0 || len(snap.Sites) != 1 {
		t.Fatalf("index holds %d campaigns, %d sites; want 0 and 1 (s1)", len(snap.Campaigns), len(snap.Sites))
	}
	expect(t, "GET", "/v1/campaigns/c1", m1, "", 404, "not_found")

	for _, tc := range []struct {
		name, method, path, key, body string
		want                          int
		holds                         []string
	}{
		{"campaign by another marketer", "POST", "/v1/campaigns", m2, campaign("c1", "a2"), 409, []string{`"id_taken"`, `campaign \"c1\"`, "another owner"}},
		{"campaign by PUT", "PUT", "/v1/campaigns/c1", m2, campaign("c1", "a2"), 409, []string{`"id_taken"`, "c1"}},
		{"campaign by admin for another", "POST", "/v1/campaigns", admin, campaign("c1", "a2"), 409, []string{`"id_taken"`}},
		{"site by another publisher", "POST", "/v1/sites", p1, site("s2", "p1"), 409, []string{`"id_taken"`, `site \"s2\"`}},
		{"site by PUT", "PUT", "/v1/sites/s2", p1, site("s2", "p1"), 409, []string{`"id_taken"`}},
		{"campaign by its owner", "POST", "/v1/campaigns", m1, campaign("c1", "a1"), 201, []string{`"c1"`}},
		{"site by its owner, PUT", "PUT", "/v1/sites/s2", p2, site("s2", "p2"), 200, []string{`"s2"`}},
		{"the recreated campaign moved away", "PUT", "/v1/campaigns/c1", admin, campaign("c1", "a2"), 409, []string{`"id_taken"`}},
		{"deleted again", "DELETE", "/v1/campaigns/c1", m1, "", 204, nil},
		{"still not another's", "POST", "/v1/campaigns", m2, campaign("c1", "a2"), 409, []string{`"id_taken"`}},
		{"back to its owner", "PUT", "/v1/campaigns/c1", m1, campaign("c1", "a1"), 200, []string{`"c1"`}},
		{"an unrelated id", "POST", "/v1/campaigns", m2, campaign("c2", "a2"), 201, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, tc.method, tc.path, tc.key, tc.body, tc.want, tc.holds...)
		})
	}
	// The recreated c1 (with its creative, never deleted) serves again: the
	// watch and the index kept building through the tombstones.
	waitFor(t, "c1 serves again", 5*time.Second, serves("c1"))
	if n := ne.cat.badValues.Load(); n != 0 {
		t.Fatalf("%d catalog values skipped as bad; tombstones must not reach the catalog", n)
	}

	// The store refuses too (demo seed, tools), and an unreadable tombstone
	// refuses rather than frees the id.
	st := ne.cat.Store()
	expect(t, "DELETE", "/v1/campaigns/c2", m2, "", 204)
	if err := st.PutCampaign(ctx, &Campaign{ID: "c2", Advertiser: "a1", Name: "N", Start: start, CPM: 2}); !errors.Is(err, ErrTaken) {
		t.Fatalf("store put over another's tombstone: %v, want ErrTaken", err)
	}
	if _, err := ne.cat.kv.Put(ctx, "gone.camp.c3", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	expect(t, "POST", "/v1/campaigns", m1, campaign("c3", "a1"), 409, `"id_taken"`)
}

// TestCreateAfterDeleteIsUndone: a create whose check ran before another
// owner's delete wrote its tombstone, and that landed after the delete,
// takes its record back; its owner's own create stays.
func TestCreateAfterDeleteIsUndone(t *testing.T) {
	srv := bustest.StartServer(t)
	ctx := testCtx(t)
	conn := srv.Connect(t)
	st, err := NewStore(ctx, conn.JS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.kv.Put(ctx, "gone.camp.c1", []byte(`{"owner":"a1","deleted":"2026-12-01T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		owner   string
		want    error
		remains bool
	}{
		{"a2", ErrTaken, false},
		{"a1", nil, true},
	} {
		rev, err := st.kv.Create(ctx, "camp.c1", []byte(`{"id":"c1","advertiser":"`+tc.owner+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.undoIfGone(ctx, prefixCampaign, "c1", tc.owner, rev); !errors.Is(err, tc.want) {
			t.Fatalf("owner %s: %v, want %v", tc.owner, err, tc.want)
		}
		_, err = st.kv.Get(ctx, "camp.c1")
		if remains := err == nil; remains != tc.remains {
			t.Fatalf("owner %s: record remains %t (%v), want %t", tc.owner, remains, err, tc.remains)
		}
	}
}
