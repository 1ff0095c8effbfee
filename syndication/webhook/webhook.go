package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks (v1.0.0): headers, secret format and signature.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"

	SecretPrefix = "whsec_"

	// Tolerance is how far a receiver accepts a timestamp from its clock.
	Tolerance = 5 * time.Minute
)

var (
	ErrSecret    = errors.New("webhook: invalid secret")
	ErrHeaders   = errors.New("webhook: missing or malformed headers")
	ErrTimestamp = errors.New("webhook: timestamp outside the tolerance")
	ErrSignature = errors.New("webhook: no matching signature")
)

// NewSecret returns a fresh endpoint secret: whsec_ and 32 random bytes in
// standard base64.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// ParseSecret returns the key of a whsec_ secret (24-64 bytes).
func ParseSecret(s string) ([]byte, error) {
	if !strings.HasPrefix(s, SecretPrefix) || len(s) > 200 {
		return nil, fmt.Errorf("%w: want %s and base64", ErrSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(s[len(SecretPrefix):])
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("%w: want 24-64 bytes of standard base64 after %s", ErrSecret, SecretPrefix)
	}
	return key, nil
}

// Sign returns the webhook-signature value for a message:
// "v1," + base64(HMAC-SHA256(key, id.timestamp.body)).
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, timestamp, body))
}

// SignAll returns the webhook-signature value with one signature per key,
// space-separated: a receiver accepts the message if any one verifies, so
// a secret can be replaced without a delivery refused.
func SignAll(keys [][]byte, id string, timestamp int64, body []byte) string {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		sigs[i] = Sign(k, id, timestamp, body)
	}
	return strings.Join(sigs, " ")
}

func mac(key []byte, id string, timestamp int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Limits of the signature header a receiver accepts.
const (
	maxSignatureHeader = 4096
	maxSignatures      = 16
)

// ParseSignatures returns the v1 signatures of a webhook-signature header
// (space-separated "version,base64" entries; other versions are skipped).
func ParseSignatures(header string) ([][]byte, error) {
	if header == "" || len(header) > maxSignatureHeader {
		return nil, fmt.Errorf("%w: signature header empty or over %d bytes", ErrHeaders, maxSignatureHeader)
	}
	var sigs [][]byte
	for i, entry := range strings.Fields(header) {
		if i >= maxSignatures {
			return nil, fmt.Errorf("%w: more than %d signatures", ErrHeaders, maxSignatures)
		}
		version, b64, ok := strings.Cut(entry, ",")
		if !ok {
			return nil, fmt.Errorf("%w: signature entry without a version", ErrHeaders)
		}
		if version != "v1" {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(sig) != sha256.Size {
			continue // a malformed entry matches nothing; others may still match
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w: no v1 signature", ErrHeaders)
	}
	return sigs, nil
}

// Headers is what Verify reads of a request's headers; http.Header is one.
type Headers interface {
	Get(key string) string
}

// Verify checks a received webhook as a receiver should: headers present,
// timestamp within Tolerance of now, and one v1 signature matching, compared
// in constant time.
func Verify(key []byte, h Headers, body []byte, now time.Time) error {
	id, ts := h.Get(HeaderID), h.Get(HeaderTimestamp)
	if id == "" || len(id) > 256 || ts == "" || len(ts) > 20 {
		return fmt.Errorf("%w: %s and %s are required", ErrHeaders, HeaderID, HeaderTimestamp)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not an integer", ErrHeaders, HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
		return ErrTimestamp
	}
	sigs, err := ParseSignatures(h.Get(HeaderSignature))
	if err != nil {
		return err
	}
	want := mac(key, id, sec, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrSignature
}
