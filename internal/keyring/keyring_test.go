package keyring

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testRing(t testing.TB) *Keyring {
	t.Helper()
	k, err := Parse(NewKeyLine(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyringSealOpen(t *testing.T) {
	old := NewKeyLine(time.Now())
	k1, err := Parse(old)
	if err != nil {
		t.Fatal(err)
	}
	sealed := k1.Seal([]byte("ada@example.com"), []byte("u1|email"))
	if bytes.Contains(sealed, []byte("ada@")) {
		t.Fatal("plaintext visible in the sealed form")
	}
	if KeyID(sealed) != k1.Current() {
		t.Errorf("key id %q, want %q", KeyID(sealed), k1.Current())
	}
	// Rotation: a second key appended becomes current; the old data still opens.
	k2, err := Parse(old + NewKeyLine(time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if k2.Current() == k1.Current() {
		t.Fatal("appended key is not current")
	}
	plain, err := k2.Open(sealed, []byte("u1|email"))
	if err != nil || string(plain) != "ada@example.com" {
		t.Fatalf("open after rotation: %q %v", plain, err)
	}
	if KeyID(k2.Seal([]byte("x"), nil)) != k2.Current() {
		t.Error("new data not sealed under the current key")
	}
	// Bound to its owner and field.
	if _, err := k2.Open(sealed, []byte("u2|email")); !errors.Is(err, ErrSealed) {
		t.Errorf("other user's aad: %v", err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := k2.Open(tampered, []byte("u1|email")); !errors.Is(err, ErrSealed) {
		t.Errorf("tampered: %v", err)
	}
	other := testRing(t)
	if _, err := other.Open(sealed, []byte("u1|email")); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key: %v", err)
	}
	for _, bad := range [][]byte{nil, {5}, {1, 'k'}, append([]byte{byte(len(k1.Current()))}, k1.Current()...)} {
		if _, err := k1.Open(bad, nil); err == nil {
			t.Errorf("open %x succeeded", bad)
		}
	}
}

func TestParse(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	short := base64.StdEncoding.EncodeToString([]byte("short"))
	tests := []struct {
		name, text, current string
		ok                  bool
	}{
		{"one", "k1:" + key, "k1", true},
		{"comments and blanks", "# keys\n\nk1:" + key + " # first\n", "k1", true},
		{"env form, last is current", "k1:" + key + ",k2:" + key, "k2", true},
		{"empty", "", "", false},
		{"only comments", "# nothing", "", false},
		{"no colon", "k1" + key, "", false},
		{"bad id", "k.1:" + key, "", false},
		{"short key", "k1:" + short, "", false},
		{"not base64", "k1:***", "", false},
		{"duplicate", "k1:" + key + "\nk1:" + key, "", false},
		{"huge", strings.Repeat("#", maxKeyringText+1), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Parse(tt.text)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrKeyring) {
					t.Errorf("error %v is not ErrKeyring", err)
				}
				if strings.Contains(err.Error(), key) {
					t.Error("error message shows the key")
				}
				return
			}
			if k.Current() != tt.current {
				t.Errorf("current %q, want %q", k.Current(), tt.current)
			}
		})
	}
}

func TestGenerateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "profile.keys")
	if err := GenerateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	k1, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// A second call keeps the existing key.
	if err := GenerateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	k2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed := k1.Seal([]byte("x"), nil)
	if _, err := k2.Open(sealed, nil); err != nil {
		t.Errorf("key replaced by the second call: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	f.Add("k1:" + key)
	f.Add("# c\nk1:" + key + "\nk2:" + key + "\n")
	f.Add("k1:" + key + ",k2:" + key)
	f.Add(":")
	f.Add("k1:")
	f.Fuzz(func(t *testing.T, text string) {
		k, err := Parse(text)
		if err != nil {
			return
		}
		sealed := k.Seal([]byte("secret"), []byte("aad"))
		if got, err := k.Open(sealed, []byte("aad")); err != nil || string(got) != "secret" {
			t.Fatalf("round trip: %q %v", got, err)
		}
	})
}

func FuzzOpen(f *testing.F) {
	k, _ := Parse("k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)))
	f.Add(k.Seal([]byte("x"), nil))
	f.Add([]byte{})
	f.Add([]byte{2, 'k', '1'})
	f.Fuzz(func(t *testing.T, sealed []byte) {
		_, _ = k.Open(sealed, nil) // never panics
		_ = KeyID(sealed)
	})
}
