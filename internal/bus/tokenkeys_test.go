package bus

import (
	"testing"
	"time"
)

func TestRotatedTokenKeys(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ttl, lead := 24*time.Hour, 2*time.Minute
	s := TokenKeys{Keys: []TokenKey{{ID: 0, Key: make([]byte, 32)}}}
	// A rotation adds a key that signs after the lead; the old one signs until then.
	s = rotated(s, t0, lead, ttl)
	if len(s.Keys) != 2 || s.Keys[1].ID != 1 || !s.Keys[1].SignFrom.Equal(t0.Add(lead)) {
		t.Fatalf("after one rotation: %+v", s.Keys)
	}
	if k, _ := s.Signing(t0.Add(time.Minute)); k.ID != 0 {
		t.Errorf("signing within the lead: key %d, want 0", k.ID)
	}
	if k, _ := s.Signing(t0.Add(lead)); k.ID != 1 {
		t.Errorf("signing after the lead: key %d, want 1", k.ID)
	}
	if next, ok := s.NextSwitch(t0); !ok || !next.Equal(t0.Add(lead)) {
		t.Errorf("next switch %v %v", next, ok)
	}
	// Key 0 stays while tokens it signed can count: replaced less than ttl ago.
	s = rotated(s, t0.Add(ttl), lead, ttl)
	if ids := keyIDs(s); len(ids) != 3 {
		t.Fatalf("a day later: keys %v, want 0 1 2", ids)
	}
	// Once replaced more than ttl ago it goes.
	s = rotated(s, t0.Add(ttl+lead+time.Second), lead, ttl)
	if ids := keyIDs(s); ids[0] != 1 {
		t.Fatalf("after its tokens expired: keys %v, want key 0 gone", ids)
	}
	// Rotating often keeps the newest MaxTokenKeys, ids never repeated among them.
	for i := range 20 {
		s = rotated(s, t0.Add(2*ttl+time.Duration(i)*time.Minute), lead, ttl)
	}
	seen := map[byte]bool{}
	for _, k := range s.Keys {
		if seen[k.ID] {
			t.Fatalf("id %d twice: %v", k.ID, keyIDs(s))
		}
		seen[k.ID] = true
	}
	if len(s.Keys) != MaxTokenKeys {
		t.Errorf("%d keys, want %d", len(s.Keys), MaxTokenKeys)
	}
}

func keyIDs(s TokenKeys) (ids []byte) {
	for _, k := range s.Keys {
		ids = append(ids, k.ID)
	}
	return ids
}
