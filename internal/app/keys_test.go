package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/bus"
)

// call is callAPI with text in and out.
func call(t *testing.T, method, url, key, body string) (int, string) {
	t.Helper()
	code, b := callAPI(t, method, url, key, []byte(body))
	return code, string(b)
}

// TestLostAdminKeys loses every admin key of a running adsyn, makes a new one
// with adsyn keys create on its stopped data directory, and uses it.
func TestLostAdminKeys(t *testing.T) {
	cfg := testConfig(t)
	a, out := start(t, cfg)
	m := regexp.MustCompile(`admin\s+(adsyn_\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no admin key printed at first start: %q", out.String())
	}
	first := m[1]
	api := "http://" + a.APIAddr()
	// A second admin and a marketer; then every admin revokes itself away.
	code, body := call(t, "POST", api+"/v1/keys", first, `{"role":"admin","name":"second"}`)
	if code != 201 {
		t.Fatalf("second admin: %d %s", code, body)
	}
	var second struct {
		Key       string         `json:"key"`
		Principal auth.Principal `json:"principal"`
	}
	if err := json.Unmarshal([]byte(body), &second); err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, "POST", api+"/v1/keys", first, `{"role":"marketer","owner":"adv1"}`); code != 201 {
		t.Fatalf("marketer: %d %s", code, body)
	}
	code, body = call(t, "GET", api+"/v1/keys", first, "")
	var listed struct {
		Keys []auth.Principal `json:"keys"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &listed) != nil || len(listed.Keys) != 3 {
		t.Fatalf("keys: %d %s", code, body)
	}
	var lost []string
	for _, p := range listed.Keys {
		if p.Role == auth.Admin && p.KeyID != second.Principal.KeyID {
			lost = append(lost, p.KeyID)
		}
	}
	lost = append(lost, second.Principal.KeyID) // the key doing the revoking goes last
	for _, id := range lost {
		if code, body := call(t, "DELETE", api+"/v1/keys/"+id, second.Key, ""); code != 204 {
			t.Fatalf("revoke %s: %d %s", id, code, body)
		}
	}
	for _, key := range []string{first, second.Key} {
		if code, _ := call(t, "GET", api+"/v1/keys", key, ""); code != 401 {
			t.Fatalf("a revoked admin key: %d, want 401", code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// The operator, on the machine, without any key.
	var made strings.Builder
	if err := app.Keys(ctx, cfg, app.KeysCommand{Op: "create", Role: auth.Admin, Name: "recovery", Actor: "cli@test-host"}, nil, &made); err != nil {
		t.Fatal(err)
	}
	m = regexp.MustCompile(`(?m)^key\s+(adsyn_\S+)$`).FindStringSubmatch(made.String())
	id := regexp.MustCompile(`(?m)^id\s+(key_[0-9a-f]+)$`).FindStringSubmatch(made.String())
	if m == nil || id == nil {
		t.Fatalf("keys create printed %q", made.String())
	}
	recovered := m[1]
	var list strings.Builder
	if err := app.Keys(ctx, cfg, app.KeysCommand{Op: "list"}, nil, &list); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(list.String()), "\n")
	if len(rows) != 1+3+1 || !strings.HasPrefix(rows[0], "ID ") {
		t.Fatalf("keys list:\n%s", list.String())
	}
	for _, r := range rows[1:] {
		f := strings.Fields(r)
		revoked := f[len(f)-1] != "-"
		wantRevoked := f[0] != id[1] && f[1] == "admin"
		if revoked != wantRevoked || strings.Contains(r, "adsyn_") {
			t.Errorf("keys list row %q: revoked %v, want %v", r, revoked, wantRevoked)
		}
	}
	for _, secret := range []string{first, second.Key, recovered, auth.Hash(recovered)} {
		if strings.Contains(list.String(), secret) {
			t.Errorf("keys list shows a key or hash")
		}
	}

	// Restarted, adsyn prints no key of its own: the new one works, the lost ones stay out.
	a, out = start(t, cfg)
	if strings.Contains(out.String(), "adsyn_") {
		t.Errorf("the restart printed keys: %q", out.String())
	}
	api = "http://" + a.APIAddr()
	if code, body := call(t, "GET", api+"/v1/keys", recovered, ""); code != 200 {
		t.Errorf("the recovered key: %d %s", code, body)
	}
	for _, key := range []string{first, second.Key} {
		if code, _ := call(t, "GET", api+"/v1/keys", key, ""); code != 401 {
			t.Errorf("a revoked admin key after restart: %d, want 401", code)
		}
	}
	code, body = call(t, "GET", api+"/v1/audit", recovered, "")
	var audit struct {
		Entries []auth.Entry `json:"entries"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &audit) != nil {
		t.Fatalf("audit: %d %s", code, body)
	}
	found := false
	for _, e := range audit.Entries {
		found = found || (e.Actor == "cli@test-host" && e.Action == "create key admin" && e.Resource == id[1])
	}
	if !found {
		t.Errorf("the audit log lacks the key made at the command line: %s", body)
	}
}

// adsyn keys refuses a data directory whose NATS port is taken, as it is
// while adsyn serve runs on it: two servers must not share one store.
func TestKeysRefusesARunningServe(t *testing.T) {
	cfg := testConfig(t)
	a, _ := start(t, cfg)
	u, err := url.Parse(a.Conn().NC.ConnectedUrl()) // the connection itself is in process
	if err != nil {
		t.Fatal(err)
	}
	cfg.NATSListen = u.Host
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = app.Keys(ctx, cfg, app.KeysCommand{Op: "list"}, nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "is adsyn serve running?") {
		t.Fatalf("err %v", err)
	}
}

// With --nats, adsyn keys works beside a running adsyn: the key it makes is
// good at once, and the one it revokes is refused.
func TestKeysOnARunningCluster(t *testing.T) {
	running := testConfig(t)
	a, out := start(t, running)
	m := regexp.MustCompile(`admin\s+(adsyn_\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no admin key printed: %q", out.String())
	}
	cfg := testConfig(t)
	cfg.NATSURLs = a.Conn().NC.ConnectedUrl()
	cfg.NATSNKey = filepath.Join(running.DataDir, bus.NKeyFile) // the embedded server requires its users
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var made strings.Builder
	if err := app.Keys(ctx, cfg, app.KeysCommand{Op: "create", Role: auth.Support}, nil, &made); err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`(?m)^key\s+(adsyn_\S+)$`).FindStringSubmatch(made.String())
	id := regexp.MustCompile(`(?m)^id\s+(key_[0-9a-f]+)$`).FindStringSubmatch(made.String())
	if key == nil || id == nil {
		t.Fatalf("keys create printed %q", made.String())
	}
	api := "http://" + a.APIAddr()
	poll(t, "the new key accepted", func() bool {
		code, _ := call(t, "GET", api+"/v1/audit", key[1], "")
		return code == 403 // known, and a support key may not read the audit log
	})
	if err := app.Keys(ctx, cfg, app.KeysCommand{Op: "revoke", ID: id[1]}, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	poll(t, "the revoked key refused", func() bool {
		code, _ := call(t, "GET", api+"/v1/audit", key[1], "")
		return code == 401
	})
	if err := app.Keys(ctx, cfg, app.KeysCommand{Op: "revoke", ID: id[1]}, nil, io.Discard); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("revoking twice: %v", err)
	}
}

// poll checks cond until it holds, failing t after 10s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// /metrics says what the binary was built from (labels in the client's
// sorted order).
func TestBuildInfoMetric(t *testing.T) {
	a, _ := start(t, testConfig(t))
	_, metrics := get(t, "http://"+a.APIAddr()+"/metrics")
	re := regexp.MustCompile(`(?m)^adsyn_build_info\{goversion="` + regexp.QuoteMeta(runtime.Version()) + `",revision="[^"]+",version="[^"]+"\} 1$`)
	if !re.MatchString(metrics) {
		t.Errorf("no adsyn_build_info with goversion %s in\n%s", runtime.Version(), metrics)
	}
}
