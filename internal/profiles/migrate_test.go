package profiles

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/keyring"
)

// TestSchema1RecordsReadAndMigrate: a record written before data keys (name
// and city in clear, contact fields and resume sealed by the keyring, photo
// in clear) still reads whole, and its next write seals it under a data key.
func TestSchema1RecordsReadAndMigrate(t *testing.T) {
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ring, _ := keyring.Parse(keyring.NewKeyLine(time.Now()))
	s, err := NewStore(ctx, conn.JS, ring)
	if err != nil {
		t.Fatal(err)
	}
	const id = "u_legacy"
	old, _ := json.Marshal(map[string]any{
		"schema": 1, "id": id, "name": "Olga Legacy", "city": "Tver", "public": []string{"name"},
		"email":    ring.Seal([]byte("olga@example.org"), aad(id, FieldEmail)),
		"photo":    Media{Type: "image/png", Size: 3},
		"resume":   Media{Type: "application/pdf", Size: 8},
		"consents": []Consent{{Purpose: Syndication, Granted: true, At: time.Unix(1700000000, 0).UTC(), Source: "form"}},
	})
	if _, err := s.kv.Create(ctx, id, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.media.PutBytes(ctx, objectName(KindPhoto, id), []byte("png")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.media.PutBytes(ctx, objectName(KindResume, id), ring.Seal([]byte("%PDF-old"), aad(id, FieldResume))); err != nil {
		t.Fatal(err)
	}
	p, err := s.Get(ctx, id)
	if err != nil || p.Name != "Olga Legacy" || p.City != "Tver" || p.Email != "olga@example.org" || !p.Consented(Syndication) {
		t.Fatalf("legacy record: %+v %v", p, err)
	}
	if b, _, err := s.Media(ctx, id, KindResume); err != nil || string(b) != "%PDF-old" {
		t.Errorf("legacy resume: %q %v", b, err)
	}
	if b, _, err := s.Media(ctx, id, KindPhoto); err != nil || string(b) != "png" {
		t.Errorf("legacy photo: %q %v", b, err)
	}
	if _, err := s.Patch(ctx, id, &Patch{Language: Optional[string]{Set: true, Value: "ru"}}, "test"); err != nil {
		t.Fatal(err)
	}
	e, err := s.kv.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(e.Value(), []byte("Olga")) || bytes.Contains(e.Value(), []byte("Tver")) || !bytes.Contains(e.Value(), []byte(`"schema":2`)) {
		t.Errorf("not migrated at its write: %s", e.Value())
	}
	if _, err := Decode(e.Value()); err == nil {
		t.Error("a schema 2 record decodes without its data key")
	}
	p, err = s.Get(ctx, id)
	if err != nil || p.Name != "Olga Legacy" || p.Email != "olga@example.org" || p.Language != "ru" {
		t.Fatalf("migrated record: %+v %v", p, err)
	}
	if err := s.Erase(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.keys.kv.Get(ctx, id); err == nil {
		t.Error("data key left after erasure")
	}
	if err := s.Erase(ctx, id); err != ErrNotFound {
		t.Errorf("second erase: %v", err)
	}
}
