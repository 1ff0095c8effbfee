package syndication

import (
	"net/http"
	"time"

	"github.com/adsyn/adsyn/syndication/webhook"
)

// The names below are the benchmark's until it moves to bench/ and uses
// package webhook; they forward to it.
//
// Deprecated: use package webhook.
const (
	HeaderID        = webhook.HeaderID
	HeaderTimestamp = webhook.HeaderTimestamp
	HeaderSignature = webhook.HeaderSignature
)

// ParseSecret forwards to webhook.ParseSecret.
//
// Deprecated: use package webhook.
func ParseSecret(s string) ([]byte, error) { return webhook.ParseSecret(s) }

// Sign forwards to webhook.Sign.
//
// Deprecated: use package webhook.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	return webhook.Sign(key, id, timestamp, body)
}

// Verify forwards to webhook.Verify.
//
// Deprecated: use package webhook.
func Verify(key []byte, h http.Header, body []byte, now time.Time) error {
	return webhook.Verify(key, h, body, now)
}
