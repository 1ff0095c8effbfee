package privacy

import (
	"slices"
	"testing"

	"github.com/adsyn/adsyn/internal/event"
)

func TestAuditorEvent(t *testing.T) {
	a, err := NewAuditor(Options{})
	if err != nil {
		t.Fatal(err)
	}
	clean := event.Event{Kind: event.KindPageview, Site: "shop", URL: "https://shop.example/taps?utm_source=news",
		Categories: []string{"plumbing"}, IP: "203.0.113.0", Area: "+7 495", Device: event.Device{OSVersion: "10.0.19045"}}
	a.Event("ADSYN_EVENTS", "1", &clean)
	if f := a.Findings(); len(f) != 0 {
		t.Fatalf("clean event: %v", f)
	}
	dirty := event.Event{Kind: event.KindSearch, Query: "hiv test", Site: "john@example.com",
		URL: "https://shop.example/p?id=7", Referrer: "https://search.example/+7-916-123-45-67",
		Categories: []string{"plumbing", "abortion"}, IP: "203.0.113.77", Area: "+7 9161234567", Name: "from 198.51.100.7"}
	a.Event("ADSYN_EVENTS", "2", &dirty)
	var got []string
	for _, f := range a.Findings() {
		got = append(got, f.Field+": "+f.Rule)
	}
	want := []string{
		"query: " + RuleSensitive,
		"site: " + RuleContact,
		"name: " + RuleIP,
		"categories[1]: " + RuleSensitive,
		"url: " + RuleQuery,
		"referrer: " + RuleContact,
		"ip: " + RuleIP,
		"area: " + RuleField,
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings\n got %q\nwant %q", got, want)
	}
	for _, f := range a.Findings() {
		if f.Key != "2" || f.Store != "ADSYN_EVENTS" {
			t.Errorf("finding located at %s %s", f.Store, f.Key)
		}
	}
}

func TestAuditorJSON(t *testing.T) {
	a, err := NewAuditor(Options{})
	if err != nil {
		t.Fatal(err)
	}
	a.JSON("adsyn_profiles", "u1", []byte(`{"id":"u1","name":"Anna","email":"ZW1haWwgMTIzNDU2Nzg5MA==","updated":"2026-12-05T17:20:00.123456789Z",
		"competence":["psychotherapy","plumbing"],"about":{"text":"call me at +7 916 123 45 67"},"error":"dial tcp 127.0.0.1:8081: refused"}`), "email")
	a.JSON("ADSYN_SYND_LOG", "9", []byte(`{"answer":"thanks anna@example.com","peer":"2001:db8::77"}`))
	var got []string
	for _, f := range a.Findings() {
		got = append(got, f.Store+" "+f.Key+" "+f.Field+": "+f.What)
	}
	want := []string{"adsyn_profiles u1 about.text: phone", "ADSYN_SYND_LOG 9 answer: email", "ADSYN_SYND_LOG 9 peer: ip"}
	if !slices.Equal(got, want) {
		t.Errorf("findings\n got %q\nwant %q", got, want)
	}
	a.Count("adsyn_profiles", 1)
	a.Count("ADSYN_SYND_LOG", 1)
	a.Count("ADSYN_SYND_LOG", 1)
	if s := a.Summary(); s != "ADSYN_SYND_LOG 2, adsyn_profiles 1" {
		t.Errorf("summary %q", s)
	}
}
