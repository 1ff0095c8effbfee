package syndication

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"testing"

	"github.com/adsyn/adsyn/internal/profiles"
)

var sink any

// BenchmarkBuild builds and hashes a partner view; its baseline marshals the
// whole record, which is what copying a profile out would cost.
func BenchmarkBuild(b *testing.B) {
	p := profile(map[profiles.Purpose]bool{profiles.Syndication: true}, profiles.PublicFields...)
	c := Contract{Fields: profiles.PublicFields}
	b.ReportAllocs()
	for b.Loop() {
		v := Build(p, c, "https://api.example")
		sink = v.Hash()
	}
}

func BenchmarkBuildBaseline(b *testing.B) {
	p := profile(map[profiles.Purpose]bool{profiles.Syndication: true}, profiles.PublicFields...)
	b.ReportAllocs()
	for b.Loop() {
		sink, _ = json.Marshal(p)
	}
}

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
