package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

var sink any

// BenchmarkSign signs a typical body; its baseline is the bare HMAC.
func BenchmarkSign(b *testing.B) {
	key, _ := ParseSecret(NewSecret())
	body := []byte(`{"type":"profile.upserted","timestamp":"2025-01-01T00:00:00Z","data":{"id":"u_0123456789abcdef0123","version":42,"name":"Ada Lovelace","city":"Lyon"}}`)
	b.ReportAllocs()
	for b.Loop() {
		sink = Sign(key, "msg_0123456789abcdef01234567", 1700000000, body)
	}
}

func BenchmarkSignBaseline(b *testing.B) {
	key, _ := ParseSecret(NewSecret())
	body := []byte(`{"type":"profile.upserted","timestamp":"2025-01-01T00:00:00Z","data":{"id":"u_0123456789abcdef0123","version":42,"name":"Ada Lovelace","city":"Lyon"}}`)
	b.ReportAllocs()
	for b.Loop() {
		m := hmac.New(sha256.New, key)
		m.Write(body)
		sink = m.Sum(nil)
	}
}
