package profiles

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/adsyn/adsyn/internal/keyring"
)

var (
	ErrNotFound  = errors.New("profiles: no such user")
	ErrInvalid   = errors.New("profiles: invalid input")
	ErrNoConsent = errors.New("profiles: the user has not consented")
	ErrConflict  = errors.New("profiles: concurrent update; retry")
	ErrMediaType = errors.New("profiles: unsupported media type")
	ErrMediaSize = errors.New("profiles: media too large")
	ErrNoMedia   = errors.New("profiles: no such media")
)

// FieldError says which input was wrong and why; it wraps ErrInvalid.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("profiles: %s: %s", e.Field, e.Reason) }
func (e *FieldError) Unwrap() error { return ErrInvalid }

func invalid(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// Field names a profile field, for visibility settings and partner contracts.
type Field string

const (
	FieldName       Field = "name"
	FieldPhoto      Field = "photo"
	FieldCity       Field = "city"
	FieldCompetence Field = "competence"
	FieldPrice      Field = "price"
	FieldLanguage   Field = "language"

	// Contact fields and the resume: never public, never syndicated (P2).
	FieldEmail  Field = "email"
	FieldPhone  Field = "phone"
	FieldResume Field = "resume"
)

// PublicFields lists the fields a user may make public, in display order.
var PublicFields = []Field{FieldName, FieldPhoto, FieldCity, FieldCompetence, FieldPrice, FieldLanguage}

// CanBePublic reports whether f may ever be shown outside the profile store.
func (f Field) CanBePublic() bool { return slices.Contains(PublicFields, f) }

// Purpose is one thing a user consents to, or not.
type Purpose string

const (
	// Syndication is sending the public profile to partner sites (P5).
	Syndication Purpose = "syndication"
	// PersonalizedAds is selecting ads from the user's interests.
	PersonalizedAds Purpose = "personalized_ads"
	// LinkVisitor is joining the ad cookie to the account (P4).
	LinkVisitor Purpose = "link_visitor"
	// AdProfile is showing the public profile in ad creatives.
	AdProfile Purpose = "ad_profile"
)

// Purposes lists every purpose.
var Purposes = []Purpose{Syndication, PersonalizedAds, LinkVisitor, AdProfile}

// Valid reports whether p is a known purpose.
func (p Purpose) Valid() bool { return slices.Contains(Purposes, p) }

// Consent is one statement of the user about one purpose: the history is a
// list of them, oldest first, and the newest per purpose is in force.
type Consent struct {
	Purpose Purpose   `json:"purpose"`
	Granted bool      `json:"granted"`
	At      time.Time `json:"at"`
	Source  string    `json:"source"`
}

// Price is the price of the user's services.
type Price struct {
	Amount   string `json:"amount"`   // decimal, at most 3 fraction digits: "45", "45.50"
	Currency string `json:"currency"` // ISO 4217 code
}

// Media describes a stored photo or resume.
type Media struct {
	Type     string    `json:"type"`
	Size     int64     `json:"size"`
	Digest   string    `json:"digest,omitempty"` // hex SHA-256 of a photo; empty for a resume
	Uploaded time.Time `json:"uploaded"`
}

// Profile is one registered user. Email and Phone are set only when the store
// opened them for the data subject; Decode leaves them empty.
type Profile struct {
	ID      string `json:"id"`
	Version uint64 `json:"version"` // the adsyn_profiles revision it was read at

	Name       string   `json:"name"`
	Email      string   `json:"email,omitempty"`
	Phone      string   `json:"phone,omitempty"`
	City       string   `json:"city,omitempty"`
	Competence []string `json:"competence,omitempty"`
	Price      *Price   `json:"price,omitempty"`
	Language   string   `json:"language,omitempty"`
	Photo      *Media   `json:"photo,omitempty"`
	Resume     *Media   `json:"resume,omitempty"`

	Public        []Field   `json:"public"`   // fields the user made public, sorted
	Consents      []Consent `json:"consents"` // history, oldest first
	LinkedVisitor string    `json:"linked_visitor,omitempty"`

	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`

	// The sealed forms as read from the store; kept so that a record decoded
	// without keys can be written back unchanged.
	sealedEmail, sealedPhone []byte
}

// IsPublic reports whether the user made f public. Contact fields never are.
func (p *Profile) IsPublic(f Field) bool { return f.CanBePublic() && slices.Contains(p.Public, f) }

// Consented reports whether the newest statement about purpose grants it.
func (p *Profile) Consented(purpose Purpose) bool {
	for i := len(p.Consents) - 1; i >= 0; i-- {
		if p.Consents[i].Purpose == purpose {
			return p.Consents[i].Granted
		}
	}
	return false
}

// ConsentState returns the purpose → granted map in force.
func (p *Profile) ConsentState() map[Purpose]bool {
	out := make(map[Purpose]bool, len(Purposes))
	for _, purpose := range Purposes {
		out[purpose] = p.Consented(purpose)
	}
	return out
}

// record is the stored form: contact fields sealed, bound to the user id.
type record struct {
	Schema        int       `json:"schema"`
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Email         []byte    `json:"email,omitempty"`
	Phone         []byte    `json:"phone,omitempty"`
	City          string    `json:"city,omitempty"`
	Competence    []string  `json:"competence,omitempty"`
	Price         *Price    `json:"price,omitempty"`
	Language      string    `json:"language,omitempty"`
	Photo         *Media    `json:"photo,omitempty"`
	Resume        *Media    `json:"resume,omitempty"`
	Public        []Field   `json:"public,omitempty"`
	Consents      []Consent `json:"consents,omitempty"`
	LinkedVisitor string    `json:"linked_visitor,omitempty"`
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
}

const schema = 1

// maxRecord bounds a stored record; a valid profile is far smaller.
const maxRecord = 256 << 10

func aad(id string, f Field) []byte { return []byte("adsyn/profiles/" + id + "/" + string(f)) }

// Decode reads a stored record without opening the contact fields: what
// syndication, search and the public views work from.
func Decode(data []byte) (*Profile, error) {
	if len(data) > maxRecord {
		return nil, fmt.Errorf("profiles: decode: record of %d bytes", len(data))
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("profiles: decode: %w", err)
	}
	if r.Schema != schema || !ValidID(r.ID) {
		return nil, fmt.Errorf("profiles: decode: schema %d, id %q", r.Schema, r.ID)
	}
	if r.Public == nil {
		r.Public = []Field{}
	}
	if r.Consents == nil {
		r.Consents = []Consent{}
	}
	return &Profile{
		ID: r.ID, Name: r.Name, City: r.City, Competence: r.Competence, Price: r.Price,
		Language: r.Language, Photo: r.Photo, Resume: r.Resume, Public: r.Public,
		Consents: r.Consents, LinkedVisitor: r.LinkedVisitor, Created: r.Created, Updated: r.Updated,
		sealedEmail: r.Email, sealedPhone: r.Phone,
	}, nil
}

// open decrypts the contact fields of a decoded profile.
func (p *Profile) open(k *keyring.Keyring) error {
	for _, f := range []struct {
		sealed []byte
		dst    *string
		field  Field
	}{{p.sealedEmail, &p.Email, FieldEmail}, {p.sealedPhone, &p.Phone, FieldPhone}} {
		if len(f.sealed) == 0 {
			*f.dst = ""
			continue
		}
		b, err := k.Open(f.sealed, aad(p.ID, f.field))
		if err != nil {
			return fmt.Errorf("profiles: open %s of %s: %w", f.field, p.ID, err)
		}
		*f.dst = string(b)
	}
	return nil
}

// encode seals the contact fields of an opened profile and marshals it.
func (p *Profile) encode(k *keyring.Keyring) ([]byte, error) {
	r := record{
		Schema: schema, ID: p.ID, Name: p.Name, City: p.City, Competence: p.Competence, Price: p.Price,
		Language: p.Language, Photo: p.Photo, Resume: p.Resume, Public: p.Public,
		Consents: p.Consents, LinkedVisitor: p.LinkedVisitor, Created: p.Created, Updated: p.Updated,
	}
	if p.Email != "" {
		r.Email = k.Seal([]byte(p.Email), aad(p.ID, FieldEmail))
	}
	if p.Phone != "" {
		r.Phone = k.Seal([]byte(p.Phone), aad(p.ID, FieldPhone))
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("profiles: encode %s: %w", p.ID, err)
	}
	return b, nil
}
