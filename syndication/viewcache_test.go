package syndication

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/profiles"
)

// The webhook body written by hand is the one encoding/json writes.
func TestAppendEnvelope(t *testing.T) {
	data := []byte(`{"id":"u_1","version":7,"name":"Ada \u003c3","city":"Lyon"}`)
	for _, ts := range []time.Time{
		time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 6, 7, 0, 0, 120_000_000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC),
	} {
		for _, typ := range []string{TypeUpserted, TypeDeleted} {
			want, err := json.Marshal(envelope{Type: typ, Timestamp: ts, Data: data})
			if err != nil {
				t.Fatal(err)
			}
			if got := appendEnvelope(nil, typ, ts, data); !bytes.Equal(got, want) {
				t.Errorf("%s at %v:\n got %s\nwant %s", typ, ts, got, want)
			}
		}
	}
}

// Partners whose contracts give the same view share its encoding; another
// contract or another version gets its own, equal to what Build gives.
func TestViewsShared(t *testing.T) {
	var vs views
	p := profile(map[profiles.Purpose]bool{profiles.Syndication: true}, profiles.PublicFields...)
	all := Contract{Fields: []profiles.Field{profiles.FieldName, profiles.FieldCity}}
	same := Contract{Fields: []profiles.Field{profiles.FieldCity, profiles.FieldName, profiles.FieldEmail}}
	narrow := Contract{Fields: []profiles.Field{profiles.FieldCity}}
	a := vs.get("u1", 7, p, all, "https://api.example")
	if b := vs.get("u1", 7, p, same, "https://api.example"); b != a {
		t.Error("the same view was encoded twice")
	}
	for _, c := range []struct {
		name    string
		version uint64
		c       Contract
		e       *encodedView
	}{
		{"first", 7, all, a},
		{"narrower contract", 7, narrow, vs.get("u1", 7, p, narrow, "https://api.example")},
		{"later version", 8, all, vs.get("u1", 8, p, all, "https://api.example")},
	} {
		v := Build(p, c.c, "https://api.example")
		want, _ := json.Marshal(v)
		if c.e.empty || c.e.hash != v.Hash() || !bytes.Equal(c.e.data, want) || len(c.e.fields) != len(v.Fields()) {
			t.Errorf("%s: %+v, want the view %s", c.name, c.e, want)
		}
		if c.name != "first" && c.e == a {
			t.Errorf("%s: shares the first view's encoding", c.name)
		}
	}
	if e := vs.get("u2", 7, profile(nil, profiles.PublicFields...), all, "https://api.example"); !e.empty {
		t.Errorf("a user without consent: %+v", e)
	}
}
