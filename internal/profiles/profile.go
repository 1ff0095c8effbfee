package profiles

import (
	"crypto/cipher"
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
	ErrLocked    = errors.New("profiles: record sealed under the user's data key; read it through a Reader")
	ErrShredded  = errors.New("profiles: the user's data key is destroyed")
	// ErrKeyUnavailable: the data key could not be read now (NATS away); retry.
	ErrKeyUnavailable = errors.New("profiles: data key unavailable")
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

	// The contact fields as read from the store, sealed: under the data key
	// (schema 2), or each under the keyring (schema 1).
	sealedContact            []byte
	legacyEmail, legacyPhone []byte

	// The nonce of the newest link token issued, until it is redeemed.
	linkNonce   string
	linkExpires time.Time
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

// record is the stored form. Schema 2 keeps in clear only what must be
// read without the user's data key: the id, the consent history (proof of
// consent, Art. 7(1) GDPR, and what P4/P5 are checked against) and the two
// dates; everything else is sealed under the data key. Schema 1 records,
// written before data keys, still read, and are rewritten as schema 2 at
// their next write.
type record struct {
	Schema   int       `json:"schema"`
	ID       string    `json:"id"`
	Consents []Consent `json:"consents,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`

	// Schema 2, under the data key: the personal fields, and apart from them
	// the contact fields, opened only for the data subject and audited staff.
	Personal []byte `json:"personal,omitempty"`
	Contact  []byte `json:"contact,omitempty"`

	// Schema 1 only: contact fields sealed by the keyring, the rest in clear.
	Name          string   `json:"name,omitempty"`
	Email         []byte   `json:"email,omitempty"`
	Phone         []byte   `json:"phone,omitempty"`
	City          string   `json:"city,omitempty"`
	Competence    []string `json:"competence,omitempty"`
	Price         *Price   `json:"price,omitempty"`
	Language      string   `json:"language,omitempty"`
	Photo         *Media   `json:"photo,omitempty"`
	Resume        *Media   `json:"resume,omitempty"`
	Public        []Field  `json:"public,omitempty"`
	LinkedVisitor string   `json:"linked_visitor,omitempty"`
}

// personal is the sealed part of a schema 2 record.
type personal struct {
	Name          string   `json:"name"`
	City          string   `json:"city,omitempty"`
	Competence    []string `json:"competence,omitempty"`
	Price         *Price   `json:"price,omitempty"`
	Language      string   `json:"language,omitempty"`
	Photo         *Media   `json:"photo,omitempty"`
	Resume        *Media   `json:"resume,omitempty"`
	Public        []Field  `json:"public,omitempty"`
	LinkedVisitor string   `json:"linked_visitor,omitempty"`

	LinkNonce   string    `json:"link_nonce,omitempty"`
	LinkExpires time.Time `json:"link_expires,omitzero"`
}

// contact is the sealed contact part of a schema 2 record (P2).
type contact struct {
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

const (
	schemaLegacy = 1
	schema       = 2
)

// maxRecord bounds a stored record; a valid profile is far smaller.
const maxRecord = 256 << 10

func aad(id string, f Field) []byte { return []byte("adsyn/profiles/" + id + "/" + string(f)) }

// Additional data of the sealed parts of a record: the part's name, bound to
// the user id.
const (
	partPersonal Field = "personal"
	partContact  Field = "contact"
)

// parse reads the clear part of a stored record.
func parse(data []byte) (*record, error) {
	if len(data) > maxRecord {
		return nil, fmt.Errorf("profiles: decode: record of %d bytes", len(data))
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("profiles: decode: %w", err)
	}
	if (r.Schema != schema && r.Schema != schemaLegacy) || !ValidID(r.ID) {
		return nil, fmt.Errorf("profiles: decode: schema %d, id %q", r.Schema, r.ID)
	}
	if r.Consents == nil {
		r.Consents = []Consent{}
	}
	return &r, nil
}

// Decode reads a stored record that needs no key: a schema 1 record, written
// before data keys. A schema 2 record needs its user's data key: it returns
// ErrLocked, and a Reader opens it.
func Decode(data []byte) (*Profile, error) {
	r, err := parse(data)
	if err != nil {
		return nil, err
	}
	if r.Schema != schemaLegacy {
		return nil, fmt.Errorf("%w: user %s", ErrLocked, r.ID)
	}
	return r.legacy(), nil
}

// legacy returns the profile of a schema 1 record, contact fields unopened.
func (r *record) legacy() *Profile {
	if r.Public == nil {
		r.Public = []Field{}
	}
	return &Profile{
		ID: r.ID, Name: r.Name, City: r.City, Competence: r.Competence, Price: r.Price,
		Language: r.Language, Photo: r.Photo, Resume: r.Resume, Public: r.Public,
		Consents: r.Consents, LinkedVisitor: r.LinkedVisitor, Created: r.Created, Updated: r.Updated,
		legacyEmail: r.Email, legacyPhone: r.Phone,
	}
}

// sealed returns the profile of a schema 2 record, its personal part opened
// with the data key, the contact part left sealed.
func (r *record) sealed(key cipher.AEAD) (*Profile, error) {
	b, err := open(key, r.Personal, aad(r.ID, partPersonal))
	if err != nil {
		return nil, fmt.Errorf("profiles: open %s: %w", r.ID, err)
	}
	var v personal
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("profiles: decode %s: %w", r.ID, err)
	}
	if v.Public == nil {
		v.Public = []Field{}
	}
	return &Profile{
		ID: r.ID, Name: v.Name, City: v.City, Competence: v.Competence, Price: v.Price,
		Language: v.Language, Photo: v.Photo, Resume: v.Resume, Public: v.Public,
		Consents: r.Consents, LinkedVisitor: v.LinkedVisitor, Created: r.Created, Updated: r.Updated,
		sealedContact: r.Contact, linkNonce: v.LinkNonce, linkExpires: v.LinkExpires,
	}, nil
}

// openContact decrypts the contact fields of a decoded profile: key opens a
// schema 2 record, ring a schema 1 record.
func (p *Profile) openContact(key cipher.AEAD, ring *keyring.Keyring) error {
	p.Email, p.Phone = "", ""
	if len(p.sealedContact) > 0 {
		b, err := open(key, p.sealedContact, aad(p.ID, partContact))
		if err != nil {
			return fmt.Errorf("profiles: open contact of %s: %w", p.ID, err)
		}
		var c contact
		if err := json.Unmarshal(b, &c); err != nil {
			return fmt.Errorf("profiles: decode contact of %s: %w", p.ID, err)
		}
		p.Email, p.Phone = c.Email, c.Phone
		return nil
	}
	for _, f := range []struct {
		sealed []byte
		dst    *string
		field  Field
	}{{p.legacyEmail, &p.Email, FieldEmail}, {p.legacyPhone, &p.Phone, FieldPhone}} {
		if len(f.sealed) == 0 {
			continue
		}
		b, err := ring.Open(f.sealed, aad(p.ID, f.field))
		if err != nil {
			return fmt.Errorf("profiles: open %s of %s: %w", f.field, p.ID, err)
		}
		*f.dst = string(b)
	}
	return nil
}

// encode seals an opened profile under its user's data key and marshals it
// as a schema 2 record.
func (p *Profile) encode(key cipher.AEAD) ([]byte, error) {
	v, err := json.Marshal(personal{
		Name: p.Name, City: p.City, Competence: p.Competence, Price: p.Price, Language: p.Language,
		Photo: p.Photo, Resume: p.Resume, Public: p.Public, LinkedVisitor: p.LinkedVisitor,
		LinkNonce: p.linkNonce, LinkExpires: p.linkExpires,
	})
	if err != nil {
		return nil, fmt.Errorf("profiles: encode %s: %w", p.ID, err)
	}
	r := record{
		Schema: schema, ID: p.ID, Consents: p.Consents, Created: p.Created, Updated: p.Updated,
		Personal: seal(key, v, aad(p.ID, partPersonal)),
	}
	if p.Email != "" || p.Phone != "" {
		c, err := json.Marshal(contact{Email: p.Email, Phone: p.Phone})
		if err != nil {
			return nil, fmt.Errorf("profiles: encode %s: %w", p.ID, err)
		}
		r.Contact = seal(key, c, aad(p.ID, partContact))
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("profiles: encode %s: %w", p.ID, err)
	}
	return b, nil
}
