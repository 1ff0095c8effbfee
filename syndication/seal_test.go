package syndication_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication"
	"github.com/adsyn/adsyn/syndication/webhook"
)

// holding returns the files under dir whose bytes contain needle.
func holding(dir string, needle []byte) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // a purged directory may go while we walk
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, needle) {
			out = append(out, path)
		}
		return nil
	})
	return out
}

// TestSecretsSealedAtRest: partners made, changed and read back after a
// restart keep their secrets, and no file of the store holds one, nor the
// whsec_ prefix at all.
func TestSecretsSealedAtRest(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, ok())
	p := e.partner("p1", rc, profiles.FieldName)
	pull := e.partner("p2", nil, profiles.FieldCity)
	name := "Renamed"
	if _, err := e.reg.Update(e.ctx, "p1", &syndication.Spec{Name: &name}); err != nil {
		t.Fatal(err)
	}
	e.srv.Restart(t)
	eventually(t, 15*time.Second, "the registry back", func() (bool, string) {
		got, err := e.reg.Update(e.ctx, "p2", &syndication.Spec{Name: &name})
		return err == nil && got.Secret == pull.Secret, fmt.Sprint(err)
	})
	reg, err := syndication.NewRegistry(e.ctx, e.srv.Connect(t).JS, e.opts...)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := reg.Get("p1"); got.Secret != p.Secret || got.Name != name {
		t.Fatalf("a new process reads p1 as %q %q", got.Name, got.Secret)
	}
	for _, needle := range []string{p.Secret, pull.Secret, webhook.SecretPrefix} {
		if files := holding(e.srv.Dir, []byte(needle)); len(files) > 0 {
			t.Errorf("%.12q… is in %v", needle, files)
		}
	}
}

// TestClearSecretsAreSealed starts from records an older version wrote, with
// whsec_ secrets in clear and several revisions each: the registry seals
// them, keeps them usable, and the store's files lose the clear bytes.
func TestClearSecretsAreSealed(t *testing.T) {
	srv := bustest.StartServer(t)
	conn := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := conn.JS.KeyValue(ctx, bus.BucketPartners)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"old1": webhook.NewSecret(), "old2": webhook.NewSecret()}
	for id, secret := range secrets {
		for rev := range 3 {
			rec := fmt.Sprintf(`{"id":%q,"name":"Old %d","secret":%q,"fields":["name"],"state":"active","shards":2,"created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}`, id, rev, secret)
			if _, err := kv.Put(ctx, id, []byte(rec)); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, 10*time.Second, "clear secrets on disk", func() (bool, string) {
		return len(holding(srv.Dir, []byte(webhook.SecretPrefix))) > 0, "not flushed yet"
	})
	ring, err := keyring.Parse(keyring.NewKeyLine(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := syndication.NewRegistry(ctx, conn.JS, syndication.WithKeyring(ring))
	if err != nil {
		t.Fatal(err)
	}
	for id, secret := range secrets {
		p, ok := reg.Get(id)
		if !ok || p.Secret != secret || p.Name != "Old 2" {
			t.Errorf("%s after sealing: %+v", id, p)
		}
		e, err := kv.Get(ctx, id)
		if err != nil || strings.Contains(string(e.Value()), secret) || !strings.Contains(string(e.Value()), `"secret_sealed"`) {
			t.Errorf("%s stored as %s (%v)", id, e.Value(), err)
		}
	}
	srv.Restart(t)
	eventually(t, 15*time.Second, "no whsec_ in any file", func() (bool, string) {
		files := holding(srv.Dir, []byte(webhook.SecretPrefix))
		return len(files) == 0, fmt.Sprint(files)
	})
	// A process with another keyring cannot use them: it fails, it does not
	// read the records as secret-less.
	other, _ := keyring.Parse(keyring.NewKeyLine(time.Now()))
	reg2, err := syndication.NewRegistry(ctx, srv.Connect(t).JS, syndication.WithKeyring(other))
	if err == nil {
		if p, ok := reg2.Get("old1"); ok {
			t.Errorf("a foreign keyring read old1: %+v", p)
		}
	}
	if _, err := syndication.NewRegistry(ctx, conn.JS); err == nil {
		t.Error("a registry without a keyring started")
	}
}
