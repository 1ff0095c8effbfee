package profiles

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func decodePatch(t testing.TB, body string) *Patch {
	t.Helper()
	var pt Patch
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pt); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return &pt
}

func TestPatchApply(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	base := func() *Profile {
		return &Profile{ID: "u1", Name: "Ada", Email: "ada@example.com", City: "Lyon",
			Competence: []string{"Plumbing"}, Price: &Price{Amount: "40", Currency: "EUR"},
			Public: []Field{FieldCity, FieldName}}
	}
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, p *Profile)
		err   error
	}{
		{"rename", `{"name":"  Ada Lovelace "}`, func(t *testing.T, p *Profile) {
			if p.Name != "Ada Lovelace" {
				t.Errorf("name %q", p.Name)
			}
		}, nil},
		{"null clears, absent keeps", `{"email":null,"price":null}`, func(t *testing.T, p *Profile) {
			if p.Email != "" || p.Price != nil || p.City != "Lyon" {
				t.Errorf("got %+v", p)
			}
		}, nil},
		{"empty string clears", `{"city":""}`, func(t *testing.T, p *Profile) {
			if p.City != "" {
				t.Errorf("city %q", p.City)
			}
		}, nil},
		{"competence deduped", `{"competence":["Go"," go ","Rust"]}`, func(t *testing.T, p *Profile) {
			if !slices.Equal(p.Competence, []string{"Go", "Rust"}) {
				t.Errorf("competence %q", p.Competence)
			}
		}, nil},
		{"visibility", `{"visibility":{"photo":"public","city":"private","email":"private"}}`, func(t *testing.T, p *Profile) {
			if !slices.Equal(p.Public, []Field{FieldName, FieldPhoto}) {
				t.Errorf("public %v", p.Public)
			}
		}, nil},
		{"consent recorded with time and source", `{"consents":{"syndication":true},"consent_source":"signup-form"}`, func(t *testing.T, p *Profile) {
			want := []Consent{{Purpose: Syndication, Granted: true, At: now, Source: "signup-form"}}
			if !slices.Equal(p.Consents, want) || !p.Consented(Syndication) || p.Consented(AdProfile) {
				t.Errorf("consents %+v", p.Consents)
			}
		}, nil},
		{"unchanged consent not recorded", `{"consents":{"ad_profile":false}}`, func(t *testing.T, p *Profile) {
			if len(p.Consents) != 0 {
				t.Errorf("consents %+v", p.Consents)
			}
		}, nil},
		// Linking needs proof from the browser (link.go): a PATCH only unlinks.
		{"link with consent", `{"consents":{"link_visitor":true},"linked_visitor":"vis_12345678"}`, nil, ErrInvalid},
		{"link without consent", `{"linked_visitor":"vis_12345678"}`, nil, ErrInvalid},
		{"unlink", `{"linked_visitor":null}`, func(t *testing.T, p *Profile) {
			if p.LinkedVisitor != "" {
				t.Errorf("visitor %q", p.LinkedVisitor)
			}
		}, nil},
		{"email made public", `{"visibility":{"email":"public"}}`, nil, ErrInvalid},
		{"resume made public", `{"visibility":{"resume":"public"}}`, nil, ErrInvalid},
		{"unknown field", `{"visibility":{"shoe_size":"public"}}`, nil, ErrInvalid},
		{"bad visibility", `{"visibility":{"name":"friends"}}`, nil, ErrInvalid},
		{"unknown purpose", `{"consents":{"spam":true}}`, nil, ErrInvalid},
		{"empty name", `{"name":" "}`, nil, ErrInvalid},
		{"long name", `{"name":"` + strings.Repeat("a", 101) + `"}`, nil, ErrInvalid},
		{"control char", `{"city":"Ly\u0000on"}`, nil, ErrInvalid},
		{"bad email", `{"email":"Ada <ada@example.com>"}`, nil, ErrInvalid},
		{"bad phone", `{"phone":"call me"}`, nil, ErrInvalid},
		{"good phone", `{"phone":"+33 1 23 45 67 89"}`, func(t *testing.T, p *Profile) {
			if p.Phone != "+33 1 23 45 67 89" {
				t.Errorf("phone %q", p.Phone)
			}
		}, nil},
		{"bad amount", `{"price":{"amount":"4,50","currency":"EUR"}}`, nil, ErrInvalid},
		{"bad currency", `{"price":{"amount":"4.50","currency":"euro"}}`, nil, ErrInvalid},
		{"language", `{"language":"PT-BR"}`, func(t *testing.T, p *Profile) {
			if p.Language != "pt-br" {
				t.Errorf("language %q", p.Language)
			}
		}, nil},
		{"bad language", `{"language":"english please"}`, nil, ErrInvalid},
		{"bad source", `{"consents":{"syndication":true},"consent_source":"<script>"}`, nil, ErrInvalid},
		{"too many competences", `{"competence":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s","t","u"]}`, nil, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base()
			err := decodePatch(t, tt.body).Apply(p, now, "api:test")
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
}

func TestConsentWithdrawalUnlinksVisitor(t *testing.T) {
	p := &Profile{ID: "u1", Name: "Ada"}
	now := time.Now()
	if err := decodePatch(t, `{"consents":{"link_visitor":true}}`).Apply(p, now, "s"); err != nil {
		t.Fatal(err)
	}
	p.LinkedVisitor, p.linkNonce = "vis_12345678", "00ff"
	if err := decodePatch(t, `{"consents":{"link_visitor":false}}`).Apply(p, now.Add(time.Second), "s"); err != nil {
		t.Fatal(err)
	}
	if p.LinkedVisitor != "" || p.linkNonce != "" {
		t.Error("visitor still linked, or a link token still pending, after withdrawal (P4)")
	}
	if len(p.Consents) != 2 || p.Consents[1].Granted {
		t.Errorf("history %+v", p.Consents)
	}
}

func TestTrimConsentsKeepsTheOneInForce(t *testing.T) {
	h := []Consent{{Purpose: AdProfile, Granted: true}}
	for i := 0; i < maxConsents+10; i++ {
		h = append(h, Consent{Purpose: Syndication, Granted: i%2 == 0})
	}
	out := trimConsents(h)
	if len(out) != maxConsents {
		t.Fatalf("len %d", len(out))
	}
	p := &Profile{Consents: out}
	if !p.Consented(AdProfile) {
		t.Error("the ad_profile consent in force was dropped")
	}
	if p.Consented(Syndication) != h[len(h)-1].Granted {
		t.Error("newest syndication statement lost")
	}
}

func FuzzPatchBody(f *testing.F) {
	f.Add(`{"name":"Ada","email":"a@b.co","phone":"+33 1 23 45 67 89","city":"Lyon","competence":["Go"],"price":{"amount":"45.50","currency":"EUR"},"language":"fr","visibility":{"name":"public","photo":"public"},"consents":{"syndication":true,"link_visitor":true},"consent_source":"form","linked_visitor":"vis_12345678"}`)
	f.Add(`{"email":null,"price":null,"competence":[]}`)
	f.Add(`{"visibility":{"email":"public"}}`)
	f.Add(`{"consents":{"x":true}}`)
	f.Add(`{"name":"\u0000"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		var pt Patch
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&pt) != nil {
			return
		}
		p := &Profile{ID: "u1", Name: "Ada", Email: "ada@example.com"}
		if err := pt.Apply(p, time.Unix(0, 0), "fuzz"); err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNoConsent) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		for _, f := range p.Public {
			if !f.CanBePublic() {
				t.Fatalf("%s made public", f)
			}
		}
		if p.LinkedVisitor != "" && !p.Consented(LinkVisitor) {
			t.Fatal("visitor linked without consent")
		}
		if p.Name == "" || len(p.Consents) > maxConsents {
			t.Fatalf("invariant broken: %+v", p)
		}
		pub := SiteView(p)
		if b, _ := json.Marshal(pub); p.Email != "" && strings.Contains(string(b), p.Email) {
			t.Fatal("email in the public view")
		}
	})
}

func FuzzParseQuery(f *testing.F) {
	f.Add("Ada", "Lyon", "Go", "10", "0")
	f.Add("", "", "", "0", "-1")
	f.Add("\xff", "", "", "abc", "")
	f.Fuzz(func(t *testing.T, name, city, comp, limit, offset string) {
		q, err := ParseQuery(map[string][]string{"name": {name}, "city": {city}, "competence": {comp}, "limit": {limit}, "offset": {offset}})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if q.Limit < 0 || q.Limit > 100 || q.Offset < 0 || q.Offset > 10000 {
			t.Fatalf("out of range: %+v", q)
		}
	})
}
