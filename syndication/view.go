package syndication

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/adsyn/adsyn/internal/profiles"
)

// Contract is what a partner's agreement allows it to receive.
type Contract struct {
	Fields []profiles.Field
}

// Eligible reports whether f may ever be syndicated: the public profile
// fields. Email, phone and the resume never are, whatever a contract says.
func Eligible(f profiles.Field) bool { return f.CanBePublic() }

// View is what one partner may hold about one user. It has no field for a
// contact detail or the resume, so none can be put in it.
type View struct {
	ID         string          `json:"id"`
	Version    uint64          `json:"version"`
	Name       string          `json:"name,omitempty"`
	Photo      *Photo          `json:"photo,omitempty"`
	City       string          `json:"city,omitempty"`
	Competence []string        `json:"competence,omitempty"`
	Price      *profiles.Price `json:"price,omitempty"`
	Language   string          `json:"language,omitempty"`
}

// Photo points at the public photo.
type Photo struct {
	URL    string `json:"url"`
	Type   string `json:"type"`
	SHA256 string `json:"sha256"`
}

// Build returns what partner contract c may receive of profile p: a field is
// in it only when the user consents to syndication, made the field public,
// and the contract lists it (P5). It copies from an allowlist into a new
// value; nothing is removed from a full record. publicURL prefixes the photo
// path. A nil profile (erased) gives the empty view.
func Build(p *profiles.Profile, c Contract, publicURL string) View {
	if p == nil {
		return View{}
	}
	v := View{ID: p.ID, Version: p.Version}
	if !p.Consented(profiles.Syndication) {
		return v
	}
	allowed := func(f profiles.Field) bool {
		return Eligible(f) && p.IsPublic(f) && slices.Contains(c.Fields, f)
	}
	if allowed(profiles.FieldName) {
		v.Name = p.Name
	}
	if allowed(profiles.FieldPhoto) && p.Photo != nil {
		v.Photo = &Photo{URL: publicURL + profiles.PhotoPath(p.ID), Type: p.Photo.Type, SHA256: p.Photo.Digest}
	}
	if allowed(profiles.FieldCity) {
		v.City = p.City
	}
	if allowed(profiles.FieldCompetence) && len(p.Competence) > 0 {
		v.Competence = slices.Clone(p.Competence)
	}
	if allowed(profiles.FieldPrice) && p.Price != nil {
		pr := *p.Price
		v.Price = &pr
	}
	if allowed(profiles.FieldLanguage) {
		v.Language = p.Language
	}
	return v
}

// Empty reports whether v carries no field: the partner must hold nothing.
func (v View) Empty() bool {
	return v.Name == "" && v.Photo == nil && v.City == "" && len(v.Competence) == 0 && v.Price == nil && v.Language == ""
}

// Fields lists the fields v carries, for the delivery log.
func (v View) Fields() []profiles.Field {
	var out []profiles.Field
	for _, f := range []struct {
		f  profiles.Field
		ok bool
	}{
		{profiles.FieldName, v.Name != ""}, {profiles.FieldPhoto, v.Photo != nil}, {profiles.FieldCity, v.City != ""},
		{profiles.FieldCompetence, len(v.Competence) > 0}, {profiles.FieldPrice, v.Price != nil}, {profiles.FieldLanguage, v.Language != ""},
	} {
		if f.ok {
			out = append(out, f.f)
		}
	}
	return out
}

// Hash identifies the content of v, version aside: equal hashes mean
// nothing to send.
func (v View) Hash() string {
	v.Version = 0
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
