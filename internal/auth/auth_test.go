package auth_test

import (
	"context"
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

func TestKeysAndAudit(t *testing.T) {
	srv := bustest.StartServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	k, err := auth.NewKeys(ctx, srv.Connect(t).JS, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	k.Routes(mux)
	mux.Handle("GET /v1/secret", k.Require(auth.Support)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		w.Write([]byte(p.Role))
	})))
	hs := httptest.NewServer(mux)
	defer hs.Close()

	admin, _, err := k.Create(ctx, auth.Admin, "", "root")
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, key, body string) (int, string) {
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := apitest.Client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, res.Body)
		return res.StatusCode, b.String()
	}
	if code, _ := do("GET", "/v1/secret", "", ""); code != 401 {
		t.Errorf("no key: %d, want 401", code)
	}
	if code, _ := do("GET", "/v1/secret", "adsyn_forged", ""); code != 401 {
		t.Errorf("forged key: %d, want 401", code)
	}
	code, body := do("POST", "/v1/keys", admin, `{"role":"marketer","owner":"adv1","name":"m"}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var created struct {
		Key       string         `json:"key"`
		Principal auth.Principal `json:"principal"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	if code, _ := do("GET", "/v1/secret", created.Key, ""); code != 403 {
		t.Errorf("marketer on support route: %d, want 403", code)
	}
	if code, body := do("POST", "/v1/keys", admin, `{"role":"wizard"}`); code != 400 || !strings.Contains(body, "invalid_role") {
		t.Errorf("bad role: %d %s", code, body)
	}
	// Only the hash is stored (P8).
	kv, _ := srv.Connect(t).JS.KeyValue(ctx, "adsyn_keys")
	if _, err := kv.Get(ctx, auth.Hash(created.Key)); err != nil {
		t.Errorf("hash not stored: %v", err)
	}
	keys, _ := kv.ListKeys(ctx)
	for key := range keys.Keys() {
		if strings.Contains(key, created.Key) {
			t.Errorf("secret stored as a key")
		}
	}
	// The denial is in the audit log.
	code, body = do("GET", "/v1/audit", admin, "")
	if code != 200 || !strings.Contains(body, `"allowed":false`) || !strings.Contains(body, created.Principal.KeyID) {
		t.Errorf("audit: %d %s", code, body)
	}
	// Revocation takes effect.
	if code, _ := do("DELETE", "/v1/keys/"+created.Principal.KeyID, admin, ""); code != 204 {
		t.Errorf("revoke: %d", code)
	}
	if code, _ := do("GET", "/v1/secret", created.Key, ""); code != 401 {
		t.Errorf("revoked key: %d, want 401", code)
	}
	// Another process sees keys through the watch.
	k2, err := auth.NewKeys(ctx, srv.Connect(t).JS, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Authenticate(admin); err != nil {
		t.Errorf("second process: %v", err)
	}
	if _, err := k2.Authenticate(created.Key); err == nil {
		t.Errorf("second process accepts a revoked key")
	}
}

// An operator at the command line makes and revokes keys: both are in the
// audit log under the operator's name, and the list keeps the revoked key's
// record, never a secret or a hash.
func TestOperatorKeys(t *testing.T) {
	srv := bustest.StartServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	k, err := auth.NewKeys(ctx, srv.Connect(t).JS, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.CreateAs(ctx, "cli@box", auth.Marketer, "", "x"); !errors.Is(err, auth.ErrNoOwner) {
		t.Errorf("marketer without owner: %v", err)
	}
	if _, _, err := k.CreateAs(ctx, "cli@box", "wizard", "", "x"); !errors.Is(err, auth.ErrBadRole) {
		t.Errorf("bad role: %v", err)
	}
	secret, p, err := k.CreateAs(ctx, "cli@box", auth.Admin, "", "recovery")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.Authenticate(secret); err != nil || got.KeyID != p.KeyID || got.Role != auth.Admin {
		t.Fatalf("new key: %+v %v", got, err)
	}
	if err := k.RevokeAs(ctx, "cli@box", p.KeyID); err != nil {
		t.Fatal(err)
	}
	if err := k.RevokeAs(ctx, "cli@box", p.KeyID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("second revoke: %v, want ErrNotFound", err)
	}
	if _, err := k.Authenticate(secret); !errors.Is(err, auth.ErrUnknownKey) {
		t.Errorf("revoked key authenticates: %v", err)
	}
	if n := len(k.List()); n != 0 {
		t.Errorf("List shows %d live keys, want 0", n)
	}
	// A second process, as adsyn keys list is, sees the revoked record.
	k2, err := auth.NewKeys(ctx, srv.Connect(t).JS, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Authenticate(secret); err == nil {
		t.Error("a second process accepts the revoked key")
	}
	all := k2.All()
	if len(all) != 1 || all[0].KeyID != p.KeyID || all[0].Role != auth.Admin || all[0].Name != "recovery" ||
		all[0].Revoked.IsZero() || all[0].Revoked.Before(all[0].Created) {
		t.Fatalf("All: %+v", all)
	}
	b, _ := json.Marshal(all)
	if strings.Contains(string(b), secret) || strings.Contains(string(b), auth.Hash(secret)) {
		t.Errorf("All leaks the key or its hash: %s", b)
	}
	entries, err := k.Audit().Recent(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Actor+" "+e.Action+" "+e.Resource)
	}
	want := []string{"cli@box create key admin " + p.KeyID, "cli@box revoke key " + p.KeyID}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
