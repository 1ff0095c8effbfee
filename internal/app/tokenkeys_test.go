package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/bus"
)

// A click-token rotation on a running deployment: `adsyn keys
// rotate-click-token` adds a key, the running edge signs with it after the
// lead without a restart, and a click signed before still redirects.
func TestClickTokenRotationWithoutRestart(t *testing.T) {
	running := testConfig(t)
	running.Demo = true
	a, _ := start(t, running)
	edge := "http://" + a.EdgeAddr()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// click asks for an ad and returns its click URL and the id of the key
	// that signed it (the token's third byte).
	click := func() (string, byte) {
		req, _ := http.NewRequest("GET", edge+"/ad?site=demo&slot=side", nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct{ Click string }
		if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&body) != nil {
			return "", 0
		}
		raw, err := base64.RawURLEncoding.DecodeString(body.Click[strings.Index(body.Click, "t=")+2:])
		if err != nil || len(raw) < 3 {
			t.Fatalf("click URL %q: %v", body.Click, err)
		}
		return body.Click, raw[2]
	}
	follow := func(u string) int {
		res, err := noRedirect.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	var before string
	var oldID byte
	poll(t, "a demo ad", func() bool { before, oldID = click(); return before != "" })

	cfg := testConfig(t)
	cfg.NATSURLs = a.Conn().NC.ConnectedUrl()
	cfg.NATSNKey = filepath.Join(running.DataDir, bus.NKeyFile)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Without the deployment's keyring the set cannot be opened: refused,
	// and nothing written.
	if err := app.Keys(ctx, cfg, app.KeysCommand{Op: "rotate-click-token", Lead: 10 * time.Second}, nil, &strings.Builder{}); err == nil {
		t.Fatal("a rotation without the deployment's keyring was done")
	}
	cfg.ProfileKeys = filepath.Join(running.DataDir, "profile.keys")
	var out strings.Builder
	if err := app.Keys(ctx, cfg, app.KeysCommand{Op: "rotate-click-token", Lead: 10 * time.Second}, nil, &out); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`Edges verify key (\d+) now`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("rotate-click-token printed %q", out.String())
	}
	newID, _ := strconv.Atoi(m[1])
	if newID == int(oldID) {
		t.Fatalf("the new key has the old key's id %d", newID)
	}
	if _, id := click(); id != oldID {
		t.Fatalf("the edge signs with key %d before the lead is over; want %d", id, oldID)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		u, id := click()
		if int(id) == newID {
			if code := follow(u); code != http.StatusFound {
				t.Fatalf("a click signed with the new key: %d", code)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge still signs with key %d 20 s after the lead", id)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code := follow(before); code != http.StatusFound {
		t.Errorf("a click signed before the rotation: %d, want 302", code)
	}
	if !strings.Contains(out.String(), "Recorded in the audit log") {
		t.Errorf("rotate-click-token printed %q", out.String())
	}
}
