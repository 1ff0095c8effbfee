package syndication

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/profiles"
)

func profile(consents map[profiles.Purpose]bool, public ...profiles.Field) *profiles.Profile {
	p := &profiles.Profile{ID: "u1", Version: 7, Name: "Ada", Email: "ada@example.com", Phone: "+33 1 23 45 67 89",
		City: "Lyon", Competence: []string{"Go"}, Price: &profiles.Price{Amount: "45", Currency: "EUR"}, Language: "fr",
		Photo: &profiles.Media{Type: "image/png", Digest: "abc"}, Resume: &profiles.Media{Type: "application/pdf"}, Public: public}
	for purpose, granted := range consents {
		p.Consents = append(p.Consents, profiles.Consent{Purpose: purpose, Granted: granted, At: time.Unix(1, 0)})
	}
	return p
}

func TestBuild(t *testing.T) {
	all := []profiles.Field{profiles.FieldName, profiles.FieldPhoto, profiles.FieldCity, profiles.FieldCompetence, profiles.FieldPrice, profiles.FieldLanguage}
	contact := []profiles.Field{profiles.FieldEmail, profiles.FieldPhone, profiles.FieldResume}
	yes := map[profiles.Purpose]bool{profiles.Syndication: true}
	tests := []struct {
		name     string
		p        *profiles.Profile
		contract []profiles.Field
		want     []profiles.Field
	}{
		{"all three allow", profile(yes, all...), all, all},
		{"no consent", profile(nil, all...), all, nil},
		{"consent withdrawn", profile(map[profiles.Purpose]bool{profiles.Syndication: false}, all...), all, nil},
		{"other consents do not count", profile(map[profiles.Purpose]bool{profiles.AdProfile: true, profiles.PersonalizedAds: true}, all...), all, nil},
		{"field private", profile(yes, profiles.FieldName), all, []profiles.Field{profiles.FieldName}},
		{"contract narrower", profile(yes, all...), []profiles.Field{profiles.FieldCity}, []profiles.Field{profiles.FieldCity}},
		{"empty contract", profile(yes, all...), nil, nil},
		{"contact fields in the contract and public", profile(yes, append(contact, profiles.FieldName)...), append(contact, profiles.FieldName), []profiles.Field{profiles.FieldName}},
		{"erased", nil, all, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Build(tt.p, Contract{Fields: tt.contract}, "https://api.example")
			if got := v.Fields(); !slices.Equal(got, tt.want) {
				t.Errorf("fields %v, want %v", got, tt.want)
			}
			if v.Empty() != (len(tt.want) == 0) {
				t.Errorf("Empty() = %v", v.Empty())
			}
			b, _ := json.Marshal(v)
			for _, secret := range []string{"ada@example.com", "23 45", "pdf"} {
				if strings.Contains(string(b), secret) {
					t.Errorf("view carries %q: %s", secret, b)
				}
			}
		})
	}
	v := Build(profile(yes, all...), Contract{Fields: all}, "https://api.example")
	if v.Photo.URL != "https://api.example/v1/profiles/u1/photo" || v.Version != 7 {
		t.Errorf("view %+v", v)
	}
	// The view is a new value: changing it leaves the profile alone.
	p := profile(yes, all...)
	v = Build(p, Contract{Fields: all}, "")
	v.Competence[0], v.Price.Amount = "x", "0"
	if p.Competence[0] != "Go" || p.Price.Amount != "45" {
		t.Error("the view shares memory with the profile")
	}
}

func TestViewHash(t *testing.T) {
	yes := map[profiles.Purpose]bool{profiles.Syndication: true}
	a := Build(profile(yes, profiles.FieldName), Contract{Fields: []profiles.Field{profiles.FieldName}}, "")
	b := a
	b.Version = 99
	if a.Hash() != b.Hash() {
		t.Error("hash depends on the version")
	}
	b.Name = "Bob"
	if a.Hash() == b.Hash() {
		t.Error("hash ignores the name")
	}
}

func TestClassify(t *testing.T) {
	tests := map[int]class{200: classOK, 202: classOK, 204: classOK, 301: classRefused, 302: classRefused, 400: classRefused,
		401: classRefused, 404: classRefused, 408: classRetry, 410: classGone, 422: classRefused, 429: classRetry,
		500: classRetry, 502: classRetry, 503: classRetry, 504: classRetry, 100: classRetry}
	for status, want := range tests {
		if got := classify(status); got != want {
			t.Errorf("classify(%d) = %d, want %d", status, got, want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	b := Backoff{Base: time.Second, Max: time.Minute, Attempts: 10}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		attempt    int
		retryAfter string
		jitter     float64
		want       time.Duration
	}{
		{"first, least jitter", 1, "", 0, 500 * time.Millisecond},
		{"first, most jitter", 1, "", 1, time.Second},
		{"doubles", 3, "", 0, 2 * time.Second},
		{"capped", 20, "", 0, 30 * time.Second},
		{"huge attempt", 1000, "", 0, 30 * time.Second},
		{"retry-after seconds is a floor", 1, "120", 0, 2 * time.Minute},
		{"retry-after below backoff", 3, "1", 0, 2 * time.Second},
		{"retry-after date", 1, "Wed, 01 Jan 2025 00:00:30 GMT", 0, 30 * time.Second},
		{"retry-after in the past", 1, "Tue, 31 Dec 2024 00:00:30 GMT", 0, 500 * time.Millisecond},
		{"retry-after capped", 1, "999999", 0, time.Hour},
		{"retry-after garbage", 1, "soon", 0, 500 * time.Millisecond},
		{"retry-after negative", 1, "-5", 0, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := retryDelay(tt.attempt, tt.retryAfter, b, now, tt.jitter); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLimiter(t *testing.T) {
	var l limiter
	if l.reserve() != 0 {
		t.Error("unlimited limiter waits")
	}
	l.set(10)
	var total time.Duration
	for range 20 {
		total += l.reserve()
	}
	// 10 tokens of burst, then 10 more at 10/s: the last waits about 1 s.
	if total < 3*time.Second {
		t.Errorf("20 reservations at 10/s waited %v in total", total)
	}
}
