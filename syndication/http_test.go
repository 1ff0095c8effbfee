package syndication_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/api/apitest"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication"
	"github.com/adsyn/adsyn/syndication/webhook"
)

type api struct {
	*env
	t     *testing.T
	keys  *auth.Keys
	mux   *http.ServeMux
	srv   *httptest.Server
	admin string
}

func newAPI(t *testing.T) *api {
	e := newEnv(t)
	keys, err := auth.NewKeys(e.ctx, e.conn.JS, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	syndication.NewHandler(e.reg, e.led, keys, nil).Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	admin, _, err := keys.Create(e.ctx, auth.Admin, "", "root")
	if err != nil {
		t.Fatal(err)
	}
	return &api{env: e, t: t, keys: keys, mux: mux, srv: srv, admin: admin}
}

func (a *api) key(role auth.Role, owner string) string {
	k, _, err := a.keys.Create(a.ctx, role, owner, "test")
	if err != nil {
		a.t.Fatal(err)
	}
	return k
}

func (a *api) do(method, path, key, body string) (int, string) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := apitest.Client(a.t).Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestPartnerAPI(t *testing.T) {
	a := newAPI(t)
	code, body := a.do("POST", "/v1/partners", a.admin, `{"id":"acme","name":"Acme","url":"https://acme.example/hook","fields":["name","city"],"rate_limit":50}`)
	if code != 201 || !strings.Contains(body, `"secret":"whsec_`) {
		t.Fatalf("create: %d %s", code, body)
	}
	var created struct{ Secret string }
	_ = json.Unmarshal([]byte(body), &created)
	if _, err := webhook.ParseSecret(created.Secret); err != nil {
		t.Errorf("secret: %v", err)
	}
	for _, path := range []string{"/v1/partners", "/v1/partners/acme"} {
		if code, body := a.do("GET", path, a.admin, ""); code != 200 || strings.Contains(body, "whsec_") || !strings.Contains(body, "Acme") {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	for _, bad := range []string{
		`{"id":"x1","url":"https://x.example","fields":["email"]}`,
		`{"id":"x2","url":"https://x.example","fields":["resume"]}`,
		`{"id":"x3","url":"ftp://x.example","fields":["name"]}`,
		`{"id":"x4","url":"https://user:pw@x.example","fields":["name"]}`,
		`{"id":"X.5","url":"https://x.example"}`,
		`{"id":"x6","fields":["name"]}`,
		`{"id":"x7","url":"https://x.example","rate_limit":-1}`,
		`{"id":"x8","url":"https://x.example","secret":"whsec_mine"}`,
		`{"id":"x9","url":"https://x.example","state":"paused"}`,
	} {
		if code, body := a.do("POST", "/v1/partners", a.admin, bad); code != 400 {
			t.Errorf("create %s: %d %s", bad, code, body)
		}
	}
	if code, _ := a.do("POST", "/v1/partners", a.admin, `{"id":"acme","url":""}`); code != 409 {
		t.Errorf("duplicate: %d", code)
	}
	if code, body := a.do("PATCH", "/v1/partners/acme", a.admin, `{"fields":["name","phone"]}`); code != 400 {
		t.Errorf("patch phone into the contract: %d %s", code, body)
	}
	if code, body := a.do("PATCH", "/v1/partners/acme", a.admin, `{"state":"disabled"}`); code != 200 || !strings.Contains(body, `"disabled"`) {
		t.Errorf("disable: %d %s", code, body)
	}
	if code, _ := a.do("PATCH", "/v1/partners/nope", a.admin, `{"state":"active"}`); code != 404 {
		t.Errorf("patch unknown: %d", code)
	}
	marketer := a.key(auth.Marketer, "adv1")
	if code, _ := a.do("GET", "/v1/partners", marketer, ""); code != 403 {
		t.Errorf("marketer lists partners: %d", code)
	}
	own, other := a.key(auth.Partner, "acme"), a.key(auth.Partner, "other")
	if code, body := a.do("GET", "/v1/partners/acme/deliveries", own, ""); code != 200 || !strings.Contains(body, `"deliveries"`) {
		t.Errorf("own deliveries: %d %s", code, body)
	}
	if code, _ := a.do("GET", "/v1/partners/acme/deliveries", other, ""); code != 403 {
		t.Errorf("other partner's deliveries: %d", code)
	}
	if code, _ := a.do("GET", "/v1/partners/acme/deliveries?limit=0", own, ""); code != 400 {
		t.Errorf("bad limit: %d", code)
	}
	if code, _ := a.do("POST", "/v1/partners/acme/replay", own, ""); code != 403 {
		t.Errorf("partner replaying: %d", code)
	}
}

// TestDeadLetters: 4xx answers and redirects go to the dead-letter stream
// with the reason; a replay after the partner is fixed brings it up to date.
func TestDeadLetters(t *testing.T) {
	a := newAPI(t)
	var hitRedirectTarget atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hitRedirectTarget.Add(1) }))
	defer target.Close()
	refusing := newReceiver(t, status(http.StatusUnprocessableEntity, 1<<30))
	moved := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
		return true
	})
	pr := a.partner("refusing", refusing, profiles.FieldName)
	a.partner("moved", moved, profiles.FieldName)
	a.worker()
	for i := range 3 {
		a.user(`{"name":"User ` + string(rune('A'+i)) + `","consents":{"syndication":true},"visibility":{"name":"public"}}`)
	}
	users := func(dl []syndication.DeadLetter) int {
		seen := map[string]bool{}
		for _, d := range dl {
			seen[d.User] = true
		}
		return len(seen)
	}
	eventually(t, 10*time.Second, "dead letters", func() (bool, string) {
		r, _ := a.led.DeadLetters(a.ctx, "refusing", 100)
		m, _ := a.led.DeadLetters(a.ctx, "moved", 100)
		return users(r) == 3 && users(m) == 3, "not yet"
	})
	code, body := a.do("GET", "/v1/partners/refusing/dead-letters", a.admin, "")
	if code != 200 || !strings.Contains(body, "answered 422") || strings.Contains(body, "User A") {
		t.Errorf("dead letters: %d %s", code, body)
	}
	if e := a.audited("dead letters of partner refusing"); e == nil || e.Role != auth.Admin || len(e.Subjects) != 3 {
		t.Errorf("dead letters read: audit entry %+v, want the admin and the 3 users", e)
	}
	if _, body := a.do("GET", "/v1/partners/moved/dead-letters", a.admin, ""); !strings.Contains(body, "redirects are not followed") {
		t.Errorf("redirect reason: %s", body)
	}
	if hitRedirectTarget.Load() != 0 {
		t.Error("a redirect was followed")
	}
	refusing.setBehaviour(ok())
	code, body = a.do("POST", "/v1/partners/refusing/replay", a.admin, "")
	var replayed struct{ Replayed int }
	if _ = json.Unmarshal([]byte(body), &replayed); code != 200 || replayed.Replayed < 3 {
		t.Fatalf("replay: %d %s", code, body)
	}
	eventually(t, 10*time.Second, "replayed", func() (bool, string) { return converged(refusing, a.expected(pr.Contract())) })
	if dl, _ := a.led.DeadLetters(a.ctx, "refusing", 100); len(dl) != 0 {
		t.Errorf("dead letters left after replay: %d", len(dl))
	}
	code, body = a.do("GET", "/v1/partners/refusing/deliveries", a.admin, "")
	if code != 200 || !strings.Contains(body, `"dead_letter"`) || !strings.Contains(body, `"delivered"`) || strings.Contains(body, "User A") {
		t.Errorf("delivery log: %d %s", code, body)
	}
}

// TestPullFeed: a partner without an endpoint reads the same views from the
// feed, in order, resumable, with deletions.
func TestPullFeed(t *testing.T) {
	a := newAPI(t)
	a.partner("puller", nil, profiles.FieldName, profiles.FieldCity)
	key := a.key(auth.Partner, "puller")
	a.worker()
	var ids []string
	for _, name := range []string{"Ann", "Bea", "Cid"} {
		ids = append(ids, a.user(`{"name":"`+name+`","email":"`+name+`@secret.example","city":"Lyon","consents":{"syndication":true},"visibility":{"name":"public","city":"public"}}`).ID)
	}
	type page struct {
		Events []struct {
			Cursor uint64          `json:"cursor"`
			ID     string          `json:"id"`
			Type   string          `json:"type"`
			Data   json.RawMessage `json:"data"`
		} `json:"events"`
		Next uint64 `json:"next_cursor"`
	}
	read := func(cursor string) page {
		code, body := a.do("GET", "/v1/feed?limit=2&cursor="+cursor, key, "")
		if code != 200 {
			t.Fatalf("feed: %d %s", code, body)
		}
		if strings.Contains(body, "secret.example") {
			t.Fatalf("contact detail in the feed: %s", body)
		}
		var p page
		_ = json.Unmarshal([]byte(body), &p)
		return p
	}
	all := func() (map[string]string, uint64) {
		got, cursor := map[string]string{}, "0"
		var next uint64
		for range 10 {
			p := read(cursor)
			for _, ev := range p.Events {
				var v syndication.View
				_ = json.Unmarshal(ev.Data, &v)
				got[v.ID] = ev.Type + ":" + v.Name
			}
			next = p.Next
			if len(p.Events) == 0 {
				break
			}
			cursor = jsonNumber(p.Next)
		}
		return got, next
	}
	eventually(t, 10*time.Second, "feed", func() (bool, string) {
		got, _ := all()
		return len(got) == 3, "not yet"
	})
	_, cursor := all()
	a.patch(ids[0], `{"name":"Ann B."}`)
	if err := a.store.Erase(a.ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	// Resuming from the cursor gives only what changed.
	eventually(t, 10*time.Second, "feed resumed", func() (bool, string) {
		p := read(jsonNumber(cursor))
		return len(p.Events) == 2, "events after cursor: " + jsonNumber(uint64(len(p.Events)))
	})
	got, _ := all()
	want := map[string]string{ids[0]: "profile.upserted:Ann B.", ids[1]: "profile.deleted:", ids[2]: "profile.upserted:Cid"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("feed from 0: %s = %q, want %q", id, got[id], w)
		}
	}
	if code, _ := a.do("GET", "/v1/feed?cursor=abc", key, ""); code != 400 {
		t.Errorf("bad cursor: %d", code)
	}
	if code, _ := a.do("GET", "/v1/feed", a.key(auth.Partner, "unknown"), ""); code != 404 {
		t.Errorf("unknown partner: %d", code)
	}
}

// audited returns the newest audit entry whose resource starts with prefix.
func (a *api) audited(prefix string) *auth.Entry {
	a.t.Helper()
	entries, err := a.keys.Audit().Recent(a.ctx, 100)
	if err != nil {
		a.t.Fatal(err)
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if strings.HasPrefix(entries[i].Resource, prefix) {
			return &entries[i]
		}
	}
	return nil
}

// TestFeedAndDeliveryReadsAreAudited: every page of the feed and of the
// delivery log that holds someone's data is in the audit log before it is
// served, with the partner, the range and the users it held (P7).
func TestFeedAndDeliveryReadsAreAudited(t *testing.T) {
	a := newAPI(t)
	a.partner("puller", nil, profiles.FieldName)
	rc := newReceiver(t, ok())
	pr := a.partner("pusher", rc, profiles.FieldName)
	key := a.key(auth.Partner, "puller")
	a.worker()
	var ids []string
	for _, name := range []string{"Ann", "Bea"} {
		ids = append(ids, a.user(`{"name":"`+name+`","consents":{"syndication":true},"visibility":{"name":"public"}}`).ID)
	}
	slices.Sort(ids)
	eventually(t, 10*time.Second, "feed", func() (bool, string) {
		_, body := a.do("GET", "/v1/feed", key, "")
		return strings.Count(body, `"profile.upserted"`) == 2, body
	})
	e := a.audited("feed of partner puller, cursor 0 to ")
	if e == nil || e.Role != auth.Partner || !slices.Equal(e.Subjects, ids) || e.Action != "GET" {
		t.Errorf("partner's feed read: audit entry %+v, want users %v", e, ids)
	}
	if code, body := a.do("GET", "/v1/feed?partner=puller&limit=1", a.admin, ""); code != 200 || !strings.Contains(body, ids[0]) && !strings.Contains(body, ids[1]) {
		t.Fatalf("admin feed read: %d %s", code, body)
	}
	if e := a.audited("feed of partner puller, cursor 0 to "); e == nil || e.Role != auth.Admin || len(e.Subjects) != 1 {
		t.Errorf("admin's feed read: audit entry %+v, want one user", e)
	}
	// A page past the end holds nobody's data: nothing to audit.
	before, _ := a.keys.Audit().Recent(a.ctx, 1000)
	if code, body := a.do("GET", "/v1/feed?cursor=999999", key, ""); code != 200 || !strings.Contains(body, `"events":[]`) {
		t.Fatalf("empty page: %d %s", code, body)
	}
	if after, _ := a.keys.Audit().Recent(a.ctx, 1000); len(after) != len(before) {
		t.Errorf("an empty page was audited: %+v", after[len(after)-1])
	}

	eventually(t, 10*time.Second, "delivered", func() (bool, string) { return converged(rc, a.expected(pr.Contract())) })
	pushKey := a.key(auth.Partner, "pusher")
	if code, body := a.do("GET", "/v1/partners/pusher/deliveries", pushKey, ""); code != 200 || !strings.Contains(body, ids[0]) {
		t.Fatalf("deliveries: %d %s", code, body)
	}
	if e := a.audited("deliveries of partner pusher, cursor 0 to "); e == nil || e.Role != auth.Partner || !slices.Equal(e.Subjects, ids) {
		t.Errorf("deliveries read: audit entry %+v, want users %v", e, ids)
	}
	if code, _ := a.do("GET", "/v1/partners/pusher/deliveries", key, ""); code != 403 {
		t.Errorf("another partner's deliveries: %d", code)
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func TestRecipientsAPI(t *testing.T) {
	a := newAPI(t)
	rc := newReceiver(t, ok())
	pr := a.partner("acme", rc, profiles.FieldName)
	a.worker()
	u := a.user(`{"name":"Ada","consents":{"syndication":true},"visibility":{"name":"public"}}`)
	eventually(t, 10*time.Second, "delivered", func() (bool, string) { return converged(rc, a.expected(pr.Contract())) })
	own := a.key(auth.User, u.ID)
	code, body := a.do("GET", "/v1/users/"+u.ID+"/recipients", own, "")
	if code != 200 || !strings.Contains(body, `"partner":"acme"`) || !strings.Contains(body, `"holds_data":true`) || !strings.Contains(body, `"delivered"`) {
		t.Errorf("own recipients: %d %s", code, body)
	}
	if code, _ := a.do("GET", "/v1/users/"+u.ID+"/recipients", a.key(auth.User, "u_other"), ""); code != 403 {
		t.Errorf("another user's recipients: %d", code)
	}
	support := a.key(auth.Support, "")
	if code, _ := a.do("GET", "/v1/users/"+u.ID+"/recipients", support, ""); code != 200 {
		t.Errorf("support: %d", code)
	}
	entries, _ := a.keys.Audit().Recent(a.ctx, 20)
	found := false
	for _, e := range entries {
		found = found || (e.Role == auth.Support && strings.HasSuffix(e.Resource, "/recipients") && slices.Equal(e.Subjects, []string{u.ID}))
	}
	if !found {
		t.Errorf("support read of recipients not audited with the user: %+v", entries)
	}
	// After erasure the partner is still listed (Art. 19), holding nothing.
	if err := a.store.Erase(a.ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "deleted", func() (bool, string) { return converged(rc, a.expected(pr.Contract())) })
	eventually(t, 5*time.Second, "recipients after erasure", func() (bool, string) {
		_, body := a.do("GET", "/v1/users/"+u.ID+"/recipients", a.admin, "")
		return strings.Contains(body, `"partner":"acme"`) && strings.Contains(body, `"holds_data":false`), body
	})
}

func TestDemoPartner(t *testing.T) {
	a := newAPI(t)
	demo, err := syndication.DemoSetup(a.ctx, a.reg, a.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.mux.Handle("/demo/partner", demo)
	a.mux.Handle("/demo/partner/", demo)
	// A second setup (a restart) reuses the partner and its secret.
	if _, err := syndication.DemoSetup(a.ctx, a.reg, a.srv.URL, nil); err != nil {
		t.Fatal(err)
	}
	a.worker()
	u := a.user(`{"name":"Demo <b>User</b>","city":"Nantes","email":"demo@secret.example","consents":{"syndication":true},"visibility":{"name":"public","city":"public"}}`)
	eventually(t, 10*time.Second, "demo received", func() (bool, string) {
		_, ok := demo.Held()[u.ID]
		return ok, "not yet"
	})
	code, body := a.do("GET", "/demo/partner", "", "")
	if code != 200 || !strings.Contains(body, "Demo &lt;b&gt;User&lt;/b&gt;") || !strings.Contains(body, "Nantes") || strings.Contains(body, "secret.example") {
		t.Errorf("demo page: %d %s", code, body)
	}
	res, err := http.Post(a.srv.URL+"/demo/partner/webhook", "application/json", bytes.NewReader([]byte(`{"type":"profile.upserted","data":{"id":"u_x"}}`)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("unsigned post: %d", res.StatusCode)
	}
	a.patch(u.ID, `{"consents":{"syndication":false}}`)
	eventually(t, 10*time.Second, "demo deletion", func() (bool, string) {
		_, ok := demo.Held()[u.ID]
		return !ok, "still held"
	})
}
