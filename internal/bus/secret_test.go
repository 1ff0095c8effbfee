package bus_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/keyring"
)

func testRing(t *testing.T) *keyring.Keyring {
	t.Helper()
	ring, err := keyring.Parse(keyring.NewKeyLine(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func TestSecretIsSharedAndStable(t *testing.T) {
	srv := bustest.StartServer(t)
	ring := testRing(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := bus.Secret(ctx, srv.Connect(t).JS, ring, "click-token", 32)
	if err != nil || len(a) != 32 {
		t.Fatalf("%x %v", a, err)
	}
	b, err := bus.Secret(ctx, srv.Connect(t).JS, ring, "click-token", 32)
	if err != nil || string(a) != string(b) {
		t.Fatalf("second process got another secret: %v", err)
	}
	// A process with another keyring cannot open it, and says why.
	if _, err := bus.Secret(ctx, srv.Connect(t).JS, testRing(t), "click-token", 32); !errors.Is(err, keyring.ErrUnknownKey) ||
		!strings.Contains(err.Error(), "--profile-keys") {
		t.Fatalf("foreign keyring: %v", err)
	}
}

// TestSecretInClearIsSealed starts from a data directory an older version
// wrote, with the click-token key in clear: the first read seals it, keeps
// its value, and no file of the store holds the clear bytes afterwards.
func TestSecretInClearIsSealed(t *testing.T) {
	srv := bustest.StartServer(t)
	ring := testRing(t)
	c := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := c.JS.KeyValue(ctx, bus.BucketSecrets)
	if err != nil {
		t.Fatal(err)
	}
	old := []byte("0123456789abcdef-clear-click-key")
	if _, err := kv.Put(ctx, "click-token", old); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "other", []byte("another-clear-secret-of-32-bytes")); err != nil {
		t.Fatal(err)
	}
	waitForCond(t, "the clear secret on disk", func() bool { return len(filesHolding(t, srv.Dir, old)) > 0 })

	got, err := bus.Secret(ctx, c.JS, ring, "click-token", 32)
	if err != nil || !bytes.Equal(got, old) {
		t.Fatalf("secret %q %v, want the one stored before", got, err)
	}
	for _, key := range []string{"click-token", "other"} {
		e, err := kv.Get(ctx, key)
		if err != nil || !bytes.HasPrefix(e.Value(), []byte("sealed1:")) {
			t.Fatalf("%s stored as %q (%v)", key, e.Value(), err)
		}
	}
	srv.Restart(t)
	c2 := srv.Connect(t)
	if again, err := bus.Secret(ctx, c2.JS, ring, "click-token", 32); err != nil || !bytes.Equal(again, old) {
		t.Fatalf("after restart: %q %v", again, err)
	}
	for _, clear := range [][]byte{old, []byte("another-clear-secret-of-32-bytes")} {
		waitForCond(t, "no file holding "+string(clear), func() bool { return len(filesHolding(t, srv.Dir, clear)) == 0 })
	}
}

// filesHolding walks every file under dir and returns those whose bytes
// contain needle.
func filesHolding(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // a purged directory may go while we walk
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, needle) {
			out = append(out, path)
		}
		return nil
	})
	return out
}

func waitForCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
