package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Errors of the keyring.
var (
	ErrKeyring    = errors.New("keyring: invalid keyring")
	ErrUnknownKey = errors.New("keyring: sealed with an unknown key id")
	ErrSealed     = errors.New("keyring: sealed value does not open")
)

// Keyring holds the AES-256-GCM keys that seal contact fields, by key id. New
// data is sealed under the current key; data sealed under an older id still
// opens, and is resealed under the current key at its next write.
//
// The text form is one "id:base64key" entry per line (or comma-separated, for
// an environment variable); '#' starts a comment; the last entry is current,
// so a rotation appends a line.
type Keyring struct {
	aeads   map[string]cipher.AEAD
	current string
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

const maxKeyringText = 64 << 10

// ParseKeyring reads the text form.
func Parse(text string) (*Keyring, error) {
	if len(text) > maxKeyringText {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrKeyring, maxKeyringText)
	}
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == ',' }) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		id, b64, ok := strings.Cut(line, ":")
		id = strings.TrimSpace(id)
		if !ok || !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("%w: an entry is not id:base64key with an id of 1-32 letters, digits, _ or -", ErrKeyring)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("%w: key %q is not 32 bytes of standard base64", ErrKeyring, id)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("%w: key id %q appears twice", ErrKeyring, id)
		}
		block, _ := aes.NewCipher(key) // 32 bytes: cannot fail
		aead, _ := cipher.NewGCM(block)
		k.aeads[id] = aead
		k.current = id
	}
	if k.current == "" {
		return nil, fmt.Errorf("%w: no key", ErrKeyring)
	}
	return k, nil
}

// LoadKeyring reads the text form from a file.
func Load(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: read: %w", err)
	}
	return Parse(string(b))
}

// GenerateKeyFile writes a keyring file with one fresh random key, readable by
// its owner only. An existing file is left as it is: replacing it would make
// every sealed field unreadable.
func GenerateKeyFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("keyring: dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("keyring: create: %w", err)
	}
	text := "# adsyn contact-field keys: id:base64(32 bytes); the last line is current.\n" + NewKeyLine(time.Now())
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("keyring: write: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keyring: write: %w", err)
	}
	return nil
}

// NewKeyLine returns a keyring entry with a fresh random key, to append when
// rotating.
func NewKeyLine(now time.Time) string {
	var key [32]byte
	_, _ = rand.Read(key[:])
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	id := fmt.Sprintf("k%s-%x", now.UTC().Format("20060102"), suffix)
	return id + ":" + base64.StdEncoding.EncodeToString(key[:]) + "\n"
}

// Current returns the id new data is sealed under.
func (k *Keyring) Current() string { return k.current }

// Seal encrypts plaintext under the current key, bound to aad. The result is
// len(id), id, nonce, ciphertext and tag.
func (k *Keyring) Seal(plaintext, aad []byte) []byte {
	aead := k.aeads[k.current]
	out := make([]byte, 0, 1+len(k.current)+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, byte(len(k.current)))
	out = append(out, k.current...)
	nonce := out[len(out) : len(out)+aead.NonceSize()]
	_, _ = rand.Read(nonce)
	out = out[:len(out)+aead.NonceSize()]
	return aead.Seal(out, nonce, plaintext, aad)
}

// Open decrypts what Seal produced with the same aad.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 1 || len(sealed) < 1+int(sealed[0]) {
		return nil, ErrSealed
	}
	id := string(sealed[1 : 1+sealed[0]])
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, id)
	}
	rest := sealed[1+len(id):]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrSealed
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], aad)
	if err != nil {
		return nil, ErrSealed
	}
	return plain, nil
}

// KeyID returns the key id a sealed value was made with.
func KeyID(sealed []byte) string {
	if len(sealed) < 1 || len(sealed) < 1+int(sealed[0]) {
		return ""
	}
	return string(sealed[1 : 1+sealed[0]])
}
