package profiles

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/adsyn/adsyn/internal/ids"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Optional is a JSON field that may be absent, null or set. A PATCH body
// leaves absent fields alone and clears null ones.
type Optional[T any] struct {
	Set   bool // present in the body
	Null  bool // present as null
	Value T
}

// UnmarshalJSON records presence; encoding/json calls it for null as well.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Null = true
		var zero T
		o.Value = zero
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// Visibility is public or private.
type Visibility string

const (
	VisibilityPublic  Visibility = "public"
	VisibilityPrivate Visibility = "private"
)

// Patch is the body of POST /v1/users and PATCH /v1/users/{id}.
type Patch struct {
	Name          *string              `json:"name"`
	Email         Optional[string]     `json:"email"`
	Phone         Optional[string]     `json:"phone"`
	City          Optional[string]     `json:"city"`
	Competence    Optional[[]string]   `json:"competence"`
	Price         Optional[Price]      `json:"price"`
	Language      Optional[string]     `json:"language"`
	Visibility    map[Field]Visibility `json:"visibility"`
	Consents      map[Purpose]bool     `json:"consents"`
	ConsentSource string               `json:"consent_source"` // where the user stated it, e.g. "signup-form"
	LinkedVisitor Optional[string]     `json:"linked_visitor"`
}

var (
	phonePattern    = regexp.MustCompile(`^\+?[0-9][0-9 ().-]{4,30}$`)
	amountPattern   = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,3})?$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
	languagePattern = regexp.MustCompile(`^[a-z]{2,3}(-[a-z0-9]{1,8}){0,3}$`)
	sourcePattern   = regexp.MustCompile(`^[A-Za-z0-9 _.:/-]{1,64}$`)
)

// Limits on free text.
const (
	maxName        = 100
	maxCity        = 100
	maxCompetences = 20
	maxCompetence  = 60
	maxConsents    = 256 // history entries kept; the newest per purpose always stays
)

// ValidID reports whether id is a well-formed user id (also a NATS KV key
// token: no dots): the one id rule, ids.Valid.
func ValidID(id string) bool { return ids.Valid(id) }

// NewID returns a fresh random user id.
func NewID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "u_" + hex.EncodeToString(b[:])
}

// cleanText trims s and checks it is 1-max runes of printable UTF-8.
func cleanText(field, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", invalid(field, "must be UTF-8")
	}
	if n := utf8.RuneCountInString(s); n == 0 || n > max {
		return "", invalid(field, fmt.Sprintf("must be 1-%d characters", max))
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", invalid(field, "must not contain control characters")
		}
	}
	return s, nil
}

func cleanEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > 254 || strings.Count(s, "@") != 1 {
		return "", invalid("email", "must be an address like name@example.com")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", invalid("email", "must be an address like name@example.com")
	}
	return s, nil
}

func cleanPhone(s string) (string, error) {
	s = strings.TrimSpace(s)
	digits := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	if !phonePattern.MatchString(s) || digits < 6 || digits > 15 {
		return "", invalid("phone", "must be a phone number of 6-15 digits, e.g. +33 1 23 45 67 89")
	}
	return s, nil
}

func cleanCompetence(in []string) ([]string, error) {
	if len(in) > maxCompetences {
		return nil, invalid("competence", fmt.Sprintf("at most %d entries", maxCompetences))
	}
	out := make([]string, 0, len(in))
	for _, c := range in {
		c, err := cleanText("competence", c, maxCompetence)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, c) }) {
			out = append(out, c)
		}
	}
	return out, nil
}

func cleanPrice(p Price) (*Price, error) {
	if !amountPattern.MatchString(p.Amount) {
		return nil, invalid("price.amount", `must be a decimal string such as "45" or "45.50"`)
	}
	if !currencyPattern.MatchString(p.Currency) {
		return nil, invalid("price.currency", "must be an ISO 4217 code such as EUR")
	}
	return &Price{Amount: p.Amount, Currency: p.Currency}, nil
}

// Apply applies the patch to p as stated by source at now. It is pure: p is
// the only thing it changes, and on error p may be half-changed, so callers
// apply it to a copy.
func (pt *Patch) Apply(p *Profile, now time.Time, source string) error {
	if pt.ConsentSource != "" {
		if !sourcePattern.MatchString(pt.ConsentSource) {
			return invalid("consent_source", "must be 1-64 letters, digits, spaces or _.:/-")
		}
		source = pt.ConsentSource
	}
	for purpose := range pt.Consents {
		if !purpose.Valid() {
			return invalid("consents", fmt.Sprintf("unknown purpose %q; use syndication, personalized_ads, link_visitor or ad_profile", purpose))
		}
	}
	// Consents first, so a link in the same body sees a consent given with it.
	// Only changes are recorded: the history says when each state began.
	for _, purpose := range Purposes {
		granted, ok := pt.Consents[purpose]
		if ok && granted != p.Consented(purpose) {
			p.Consents = append(p.Consents, Consent{Purpose: purpose, Granted: granted, At: now, Source: source})
		}
	}
	p.Consents = trimConsents(p.Consents)

	if pt.Name != nil {
		s, err := cleanText("name", *pt.Name, maxName)
		if err != nil {
			return err
		}
		p.Name = s
	}
	var err error
	if pt.Email.Set {
		p.Email = ""
		if !pt.Email.Null && strings.TrimSpace(pt.Email.Value) != "" {
			if p.Email, err = cleanEmail(pt.Email.Value); err != nil {
				return err
			}
		}
	}
	if pt.Phone.Set {
		p.Phone = ""
		if !pt.Phone.Null && strings.TrimSpace(pt.Phone.Value) != "" {
			if p.Phone, err = cleanPhone(pt.Phone.Value); err != nil {
				return err
			}
		}
	}
	if pt.City.Set {
		p.City = ""
		if !pt.City.Null && strings.TrimSpace(pt.City.Value) != "" {
			if p.City, err = cleanText("city", pt.City.Value, maxCity); err != nil {
				return err
			}
		}
	}
	if pt.Competence.Set {
		if p.Competence, err = cleanCompetence(pt.Competence.Value); err != nil {
			return err
		}
		if len(p.Competence) == 0 {
			p.Competence = nil
		}
	}
	if pt.Price.Set {
		p.Price = nil
		if !pt.Price.Null {
			if p.Price, err = cleanPrice(pt.Price.Value); err != nil {
				return err
			}
		}
	}
	if pt.Language.Set {
		p.Language = ""
		if !pt.Language.Null && pt.Language.Value != "" {
			l := strings.ToLower(strings.TrimSpace(pt.Language.Value))
			if len(l) > 35 || !languagePattern.MatchString(l) {
				return invalid("language", "must be a BCP 47 tag such as fr or pt-br")
			}
			p.Language = l
		}
	}
	for f, v := range pt.Visibility {
		switch {
		case v != VisibilityPublic && v != VisibilityPrivate:
			return invalid("visibility."+string(f), `must be "public" or "private"`)
		case f == FieldEmail || f == FieldPhone || f == FieldResume:
			if v == VisibilityPublic {
				return invalid("visibility."+string(f), "contact details and the resume are never public")
			}
		case !f.CanBePublic():
			return invalid("visibility", fmt.Sprintf("unknown field %q", f))
		case v == VisibilityPublic && !slices.Contains(p.Public, f):
			p.Public = append(p.Public, f)
		case v == VisibilityPrivate:
			p.Public = slices.DeleteFunc(p.Public, func(x Field) bool { return x == f })
		}
	}
	slices.Sort(p.Public)

	if pt.LinkedVisitor.Set {
		if !pt.LinkedVisitor.Null && pt.LinkedVisitor.Value != "" {
			return invalid("linked_visitor", "a browser is linked only from that browser (P4): POST /v1/users/{id}/link for a token, then open /link?t=TOKEN on the ad server in that browser; null unlinks")
		}
		p.LinkedVisitor = ""
	}
	if !p.Consented(LinkVisitor) {
		// No record carries both without consent (P4); a pending token dies too.
		p.LinkedVisitor, p.linkNonce, p.linkExpires = "", "", time.Time{}
	}
	if strings.TrimSpace(p.Name) == "" {
		return invalid("name", "is required")
	}
	p.Updated = now
	return nil
}

// trimConsents drops the oldest statements beyond maxConsents, never the one
// in force for a purpose.
func trimConsents(h []Consent) []Consent {
	if len(h) <= maxConsents {
		return h
	}
	newest := map[Purpose]int{}
	for i, c := range h {
		newest[c.Purpose] = i
	}
	drop := len(h) - maxConsents
	out := make([]Consent, 0, maxConsents)
	for i, c := range h {
		if drop > 0 && newest[c.Purpose] != i {
			drop--
			continue
		}
		out = append(out, c)
	}
	return out
}

// clone returns a deep copy of p, so a failed Apply leaves the original intact.
func (p *Profile) clone() *Profile {
	c := *p
	c.Competence = slices.Clone(p.Competence)
	c.Public = slices.Clone(p.Public)
	c.Consents = slices.Clone(p.Consents)
	if p.Price != nil {
		pr := *p.Price
		c.Price = &pr
	}
	if p.Photo != nil {
		m := *p.Photo
		c.Photo = &m
	}
	if p.Resume != nil {
		m := *p.Resume
		c.Resume = &m
	}
	return &c
}
