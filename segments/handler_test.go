package segments

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/api/apitest"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

func TestHandler(t *testing.T) {
	srv := bustest.StartServer(t)
	conn := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	keys, err := auth.NewKeys(ctx, conn.JS, nil)
	if err != nil {
		t.Fatal(err)
	}
	live := taxonomy.NewLive(nil)
	h, err := NewHandler(newStore(t, conn), live, keys)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Routes(mux)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	admin, _, err := keys.Create(ctx, auth.Admin, "", "ops")
	if err != nil {
		t.Fatal(err)
	}
	support, _, err := keys.Create(ctx, auth.Support, "", "desk")
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, key, body string) (int, string) {
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := apitest.Client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	at := time.Now().Add(-14 * 24 * time.Hour).UnixMilli()
	putRecord(t, conn, Record{Visitor: "vis-9", Events: 7, LastSeen: at, Langs: []string{"ru"},
		Segments: []Score{{ID: "home.plumbing", Score: 2, At: at, Rule: "keyword:plumber*"}},
		Caps:     []Cap{{Campaign: "c1", Times: []int64{at - 1, at}}}})

	code, body := do("GET", "/v1/visitors/vis-9/segments", admin, "")
	if code != 200 {
		t.Fatalf("visitor: %d %s", code, body)
	}
	var v VisitorView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Segments) != 1 || v.Segments[0].Name != "Plumbing" || v.Segments[0].Rule != "keyword:plumber*" || v.Segments[0].Score > 1.01 || v.Segments[0].Score < 0.99 {
		t.Errorf("segments %+v (a 2 fourteen days old, half-life 14 days, is about 1)", v.Segments)
	}
	if v.Events != 7 || len(v.Frequency) != 1 || v.Frequency[0].Impressions != 2 {
		t.Errorf("view %+v", v)
	}
	entries, err := keys.Audit().Recent(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		found = found || e.Allowed && strings.Contains(e.Resource, "vis-9") && slices.Equal(e.Subjects, []string{"vis-9"})
	}
	if !found {
		t.Errorf("the read is not in the audit log: %+v", entries)
	}
	if code, _ := do("GET", "/v1/visitors/vis-9/segments", support, ""); code != 403 {
		t.Errorf("support key: %d, want 403", code)
	}
	if code, _ := do("GET", "/v1/visitors/nobody/segments", admin, ""); code != 404 {
		t.Errorf("unknown visitor: %d", code)
	}
	if code, _ := do("GET", "/v1/visitors/bad..id/segments", admin, ""); code != 400 {
		t.Errorf("bad id: %d", code)
	}

	// The taxonomy.
	code, body = do("GET", "/v1/taxonomy", admin, "")
	if code != 200 || !strings.Contains(body, `"home.plumbing"`) {
		t.Fatalf("get taxonomy: %d", code)
	}
	bad := `{"segments":[{"id":"home","name":"Home","category":"home"},{"id":"wellness","name":"Wellness","category":"general","rules":{"keywords":["spa","therapy","депрессия"]}}]}`
	code, body = do("PUT", "/v1/taxonomy", admin, bad)
	if code != 400 || !strings.Contains(body, "sensitive_segment") || !strings.Contains(body, `\"wellness\"`) {
		t.Errorf("sensitive PUT: %d %s", code, body)
	}
	if live.Load() != taxonomy.Default() {
		t.Error("a refused taxonomy was put in force")
	}
	code, body = do("PUT", "/v1/taxonomy", admin, `{"version":"v2","segments":[{"id":"home","name":"Home","category":"home","rules":{"keywords":["plumber"]}}]}`)
	if code != 200 || live.Load().Version() != "v2" {
		t.Errorf("PUT: %d %s", code, body)
	}
	if code, body := do("PUT", "/v1/taxonomy", admin, `{"segments":[{"id":"x","name":"X","category":"cooking"}]}`); code != 400 || !strings.Contains(body, "invalid_taxonomy") {
		t.Errorf("invalid PUT: %d %s", code, body)
	}
	if code, _ := do("PUT", "/v1/taxonomy", support, `{}`); code != 403 {
		t.Errorf("support PUT: %d", code)
	}
}
