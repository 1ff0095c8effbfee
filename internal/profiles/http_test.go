package profiles_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/adsyn/adsyn/internal/api"
	"github.com/adsyn/adsyn/internal/api/apitest"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/segments"
)

const (
	email  = "ada.secret@example.com"
	phone  = "+33 6 11 22 33 44"
	resume = "%PDF-1.7 resume of Ada: confidential-resume-marker"
)

// photo is a real PNG: uploads are parsed to strip their metadata.
var photo = func() []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, testImage())
	return b.Bytes()
}()

type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path, key string, body []byte, headers ...string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := apitest.Client(c.t).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// register creates a user as the Site's backend does and returns it with
// the user's own key.
func (c client) register(admin, body string) (profiles.Profile, string) {
	c.t.Helper()
	code, resp := c.do("POST", "/v1/users", admin, []byte(body))
	if code != 201 {
		c.t.Fatalf("create: %d %s", code, resp)
	}
	var created struct {
		User profiles.Profile `json:"user"`
		Key  string           `json:"key"`
	}
	if err := json.Unmarshal([]byte(resp), &created); err != nil {
		c.t.Fatal(err)
	}
	return created.User, created.Key
}

// startAPI serves the users API over a real NATS, with one partner that
// holds every user's data.
func startAPI(t *testing.T, opts ...profiles.Option) (context.Context, *bus.Conn, *auth.Keys, *profiles.Store, client) {
	t.Helper()
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	keys, err := auth.NewKeys(ctx, conn.JS, nil)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Parse(keyring.NewKeyLine(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	recipients := func(ctx context.Context, user string) ([]profiles.Recipient, error) {
		return []profiles.Recipient{{Partner: "p1", Name: "Partner One", Holds: true}}, nil
	}
	visitors, err := segments.NewKVStore(ctx, conn.JS, segments.WithCache(1<<20, time.Minute, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(visitors.Close)
	store, err := profiles.NewStore(ctx, conn.JS, ring, append([]profiles.Option{profiles.WithRecipients(recipients), profiles.WithVisitors(visitors)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	profiles.NewHandler(store, keys, nil).Routes(mux)
	mux.HandleFunc("/", api.NotFound) // as the app does: unknown paths get the JSON 404
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return ctx, conn, keys, store, client{t, hs.URL}
}

func TestUsersAPI(t *testing.T) {
	ctx, conn, keys, store, c := startAPI(t)
	admin, _, _ := keys.Create(ctx, auth.Admin, "", "root")
	support, _, _ := keys.Create(ctx, auth.Support, "", "desk")

	// Registration (admin: the Site's backend) returns the user's own key.
	user, key := c.register(admin, `{"name":"Ada Lovelace","email":"`+email+`","phone":"`+phone+`","city":"Lyon","competence":["Go","Plumbing"],"price":{"amount":"45.50","currency":"EUR"},"language":"fr","consents":{"syndication":true,"ad_profile":true},"consent_source":"signup-form"}`)
	id := user.ID
	if user.Email != email || len(user.Consents) != 2 || user.Consents[0].Source != "signup-form" {
		t.Errorf("created %+v", user)
	}
	if code, _ := c.do("POST", "/v1/users", key, []byte(`{"name":"x"}`)); code != 403 {
		t.Errorf("user creating users: %d", code)
	}
	for _, bad := range []string{`{"email":"x@y.z"}`, `{"name":"A","visibility":{"email":"public"}}`, `{"name":"A","extra":1}`, `{`} {
		if code, body := c.do("POST", "/v1/users", admin, []byte(bad)); code != 400 {
			t.Errorf("create %s: %d %s", bad, code, body)
		}
	}

	// Contact fields are sealed at rest (P8).
	kv, _ := conn.JS.KeyValue(ctx, bus.BucketProfiles)
	e, err := kv.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(e.Value(), []byte("ada.secret")) || bytes.Contains(e.Value(), []byte("11 22 33")) {
		t.Fatalf("contact detail in clear in the bucket: %s", e.Value())
	}

	// Settings: make fields public; upload media.
	if code, body := c.do("PATCH", "/v1/users/"+id, key, []byte(`{"visibility":{"name":"public","city":"public","competence":"public","photo":"public"}}`)); code != 200 {
		t.Fatalf("patch: %d %s", code, body)
	}
	if code, body := c.do("PUT", "/v1/users/"+id+"/photo", key, photo); code != 200 {
		t.Fatalf("photo: %d %s", code, body)
	}
	if code, _ := c.do("PUT", "/v1/users/"+id+"/photo", key, []byte("GIF89a....")); code != 415 {
		t.Errorf("gif photo: %d", code)
	}
	if code, _ := c.do("PUT", "/v1/users/"+id+"/photo", key, append(bytes.Clone(photo), make([]byte, profiles.MaxPhoto)...)); code != 413 {
		t.Errorf("huge photo: %d", code)
	}
	if code, _ := c.do("PUT", "/v1/users/"+id+"/resume", key, photo); code != 415 {
		t.Errorf("png resume: %d", code)
	}
	if code, body := c.do("PUT", "/v1/users/"+id+"/resume", key, []byte(resume)); code != 200 {
		t.Fatalf("resume: %d %s", code, body)
	}
	media, _ := conn.JS.ObjectStore(ctx, bus.ObjectMedia)
	stored, err := media.GetBytes(ctx, "resume/"+id)
	if err != nil || bytes.Contains(stored, []byte("confidential-resume-marker")) {
		t.Fatalf("resume stored in clear or missing: %v", err)
	}
	if code, body := c.do("GET", "/v1/users/"+id+"/resume", key, nil); code != 200 || body != resume {
		t.Errorf("own resume: %d %q", code, body)
	}

	// Link the ad cookie: refused without consent, then with it.
	segs, _ := conn.JS.KeyValue(ctx, bus.BucketSegments)
	rec, _ := msgpack.Marshal(map[string]any{"v": "vis_abcdefgh", "ls": 1700000000000})
	if _, err := segs.Put(ctx, "vis_abcdefgh", rec); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.do("POST", "/v1/users/"+id+"/link", key, nil); code != 409 {
		t.Errorf("link token without consent: %d", code)
	}
	if code, body := c.do("PATCH", "/v1/users/"+id, key, []byte(`{"consents":{"link_visitor":true},"linked_visitor":"vis_abcdefgh"}`)); code != 400 || !strings.Contains(body, "/link") {
		t.Errorf("link by PATCH: %d %s, want 400 naming the link flow", code, body)
	}
	if code, body := c.do("PATCH", "/v1/users/"+id, key, []byte(`{"consents":{"link_visitor":true}}`)); code != 200 {
		t.Fatalf("consent to linking: %d %s", code, body)
	}
	code, body := c.do("POST", "/v1/users/"+id+"/link", key, nil)
	var link struct{ Token string }
	if err := json.Unmarshal([]byte(body), &link); code != 201 || err != nil || link.Token == "" {
		t.Fatalf("link token: %d %s", code, body)
	}
	if _, err := store.RedeemLink(ctx, link.Token, "vis_abcdefgh"); err != nil {
		t.Fatalf("redeem: %v", err)
	}

	// Who may read the account.
	other, _, _ := keys.Create(ctx, auth.User, "u_someoneelse", "other")
	if code, _ := c.do("GET", "/v1/users/"+id, other, nil); code != 403 {
		t.Errorf("another user's key: %d", code)
	}
	if code, _ := c.do("PATCH", "/v1/users/"+id, support, []byte(`{"name":"x"}`)); code != 403 {
		t.Errorf("support writing: %d", code)
	}
	if code, body := c.do("GET", "/v1/users/"+id, support, nil); code != 200 || !strings.Contains(body, email) {
		t.Errorf("support read: %d %s", code, body)
	}
	entries, err := keys.Audit().Recent(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, e := range entries {
		if e.Role == auth.Support && e.Allowed && e.Resource == "/v1/users/"+id && slices.Equal(e.Subjects, []string{id}) {
			audited = true
		}
	}
	if !audited {
		t.Errorf("support read not in the audit log (P7): %+v", entries)
	}
	if code, _ := c.do("GET", "/v1/users/"+id+"/export", admin, nil); code != 403 {
		t.Errorf("admin export: %d, want 403 (data subject only)", code)
	}

	// Export: everything, decrypted, with the visitor record and recipients.
	code, body = c.do("GET", "/v1/users/"+id+"/export", key, nil)
	if code != 200 {
		t.Fatalf("export: %d %s", code, body)
	}
	var x profiles.Export
	if err := json.Unmarshal([]byte(body), &x); err != nil {
		t.Fatal(err)
	}
	if x.Profile.Email != email || x.Profile.Phone != phone || string(x.Resume.Data) != resume || !bytes.Equal(x.Photo.Data, photo) ||
		x.Visitor == nil || len(x.Recipients) != 1 || len(x.Profile.Consents) != 3 {
		t.Errorf("export incomplete: %s", body)
	}

	// Public profile and search: public fields only, never contact details.
	code, body = c.do("GET", "/v1/profiles/"+id, "", nil)
	if code != 200 || !strings.Contains(body, "Ada Lovelace") || strings.Contains(body, "45.50") {
		t.Errorf("public profile: %d %s", code, body)
	}
	if code, body := c.do("GET", "/v1/profiles/"+id+"/photo", "", nil); code != 200 || body != string(photo) {
		t.Errorf("public photo: %d", code)
	}
	if code, _ := c.do("GET", "/v1/profiles/"+id+"/resume", "", nil); code != 404 {
		t.Errorf("public resume: %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body = c.do("GET", "/v1/profiles?city=lyon&competence=go&name=love", "", nil)
		if strings.Contains(body, id) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != 200 || !strings.Contains(body, id) {
		t.Errorf("search: %d %s", code, body)
	}
	if code, body := c.do("GET", "/v1/profiles?city=Paris", "", nil); code != 200 || strings.Contains(body, id) {
		t.Errorf("search Paris: %d %s", code, body)
	}
	if code, _ := c.do("GET", "/v1/profiles?limit=1000", "", nil); code != 400 {
		t.Errorf("bad limit: %d", code)
	}
	for _, path := range []string{"/v1/profiles/" + id, "/v1/profiles?name=ada"} {
		_, body := c.do("GET", path, "", nil)
		if strings.Contains(body, "ada.secret") || strings.Contains(body, "11 22 33") || strings.Contains(body, "resume") {
			t.Errorf("%s shows a contact detail: %s", path, body)
		}
	}

	// Erasure: media, visitor record, profile; the key stops working.
	if code, body := c.do("DELETE", "/v1/users/"+id, key, nil); code != 200 {
		t.Fatalf("erase: %d %s", code, body)
	}
	if _, err := kv.Get(ctx, id); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("profile after erasure: %v", err)
	}
	hist, err := kv.History(ctx, id)
	if err == nil && len(hist) > 1 {
		t.Errorf("history kept after erasure: %d revisions", len(hist))
	}
	if _, err := segs.Get(ctx, "vis_abcdefgh"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("visitor record after erasure: %v", err)
	}
	for _, name := range []string{"photo/" + id, "resume/" + id} {
		if _, err := media.GetBytes(ctx, name); !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Errorf("%s after erasure: %v", name, err)
		}
	}
	if code, _ := c.do("GET", "/v1/users/"+id, key, nil); code != 401 {
		t.Errorf("erased user's key: %d", code)
	}
	if code, _ := c.do("GET", "/v1/profiles/"+id, "", nil); code != 404 {
		t.Errorf("public profile after erasure: %d", code)
	}
}

// A request of the signed-in user carrying Sec-GPC: 1 withdraws syndication
// and personalized ads (source "gpc", so partners get their deletions) and
// nothing else; the same browser cannot grant them back; other values of
// the header, and staff requests, change nothing.
func TestGlobalPrivacyControl(t *testing.T) {
	ctx, _, keys, store, c := startAPI(t)
	admin, _, _ := keys.Create(ctx, auth.Admin, "", "root")
	user, key := c.register(admin, `{"name":"Grace","consents":{"syndication":true,"personalized_ads":true,"ad_profile":true}}`)
	id := user.ID
	consents := func() (*profiles.Profile, map[profiles.Purpose]bool) {
		t.Helper()
		p, err := store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return p, p.ConsentState()
	}
	all := map[profiles.Purpose]bool{profiles.Syndication: true, profiles.PersonalizedAds: true, profiles.AdProfile: true, profiles.LinkVisitor: false}

	for _, v := range []string{"0", "true", "1, 1", ""} {
		c.do("GET", "/v1/users/"+id, key, nil, "Sec-GPC", v)
	}
	c.do("GET", "/v1/users/"+id, admin, nil, "Sec-GPC", "1") // the staff's browser, not the user's
	if _, got := consents(); !maps.Equal(got, all) {
		t.Fatalf("consents changed without the user's GPC: %v", got)
	}

	if code, body := c.do("GET", "/v1/users/"+id, key, nil, "Sec-GPC", "1"); code != 200 || !strings.Contains(body, `"syndication":false`) {
		t.Fatalf("GET with GPC: %d %s", code, body)
	}
	p, got := consents()
	want := maps.Clone(all)
	want[profiles.Syndication], want[profiles.PersonalizedAds] = false, false
	if !maps.Equal(got, want) {
		t.Fatalf("after GPC: %v, want %v", got, want)
	}
	for _, st := range p.Consents[len(p.Consents)-2:] {
		if st.Granted || st.Source != "gpc" {
			t.Errorf("statement %+v, want a withdrawal from gpc", st)
		}
	}
	n := len(p.Consents)
	c.do("GET", "/v1/users/"+id, key, nil, "Sec-GPC", "1")
	if p, _ := consents(); len(p.Consents) != n {
		t.Errorf("a second GPC request added statements: %d, then %d", n, len(p.Consents))
	}

	code, body := c.do("PATCH", "/v1/users/"+id, key, []byte(`{"consents":{"syndication":true}}`), "Sec-GPC", "1")
	if code != 409 || !strings.Contains(body, "gpc_conflict") || !strings.Contains(body, "consents.syndication") {
		t.Errorf("granting syndication with GPC: %d %s", code, body)
	}
	if code, body := c.do("PATCH", "/v1/users/"+id, key, []byte(`{"city":"Paris"}`), "Sec-GPC", "1"); code != 200 {
		t.Errorf("other changes with GPC: %d %s", code, body)
	}
	if code, body := c.do("PATCH", "/v1/users/"+id, key, []byte(`{"consents":{"syndication":true}}`)); code != 200 {
		t.Errorf("granting again without GPC: %d %s", code, body)
	}
	if _, got := consents(); !got[profiles.Syndication] {
		t.Errorf("syndication not granted again: %v", got)
	}
}
