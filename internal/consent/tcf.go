package consent

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	ErrTooLong   = errors.New("consent: TC string too long")
	ErrMalformed = errors.New("consent: malformed TC string")
	ErrVersion   = errors.New("consent: unsupported TC string version")
	// ErrInvalid: the string decodes but breaks a TCF v2.2 rule; it grants nothing.
	ErrInvalid = errors.New("consent: TC string not valid under TCF v2.2")
	// ErrOutOfRange: Encode was given a value its field cannot hold.
	ErrOutOfRange = errors.New("consent: value out of range for its TC string field")
)

// MaxLen bounds a TC string in bytes. Parsing is linear in the length, so the
// bound caps the work one request can cause. A real string is a few hundred
// bytes and a cookie cannot exceed 4 KiB; the largest string the format
// allows in practice (three full 65,535-vendor bit fields, about 33 KB of
// base64) still fits, so no honest string is refused.
const MaxLen = 64 << 10

// maxVendor is the largest vendor id the format can carry (16 bits).
const maxVendor = 1<<16 - 1

// TCString is a decoded TC string: the core segment, plus the disclosed
// vendors and publisher purposes segments when present. Other segment types
// are skipped. Vendor sets hold sorted, disjoint ranges whatever the wire
// encoding was.
type TCString struct {
	Version                   int                `json:"version"`
	Created                   time.Time          `json:"created"`
	LastUpdated               time.Time          `json:"lastUpdated"`
	CmpID                     int                `json:"cmpId"`
	CmpVersion                int                `json:"cmpVersion"`
	ConsentScreen             int                `json:"consentScreen"`
	ConsentLanguage           string             `json:"consentLanguage"`
	VendorListVersion         int                `json:"vendorListVersion"`
	TcfPolicyVersion          int                `json:"tcfPolicyVersion"`
	IsServiceSpecific         bool               `json:"isServiceSpecific"`
	UseNonStandardTexts       bool               `json:"useNonStandardTexts"`
	SpecialFeatureOptIns      Bits               `json:"specialFeatureOptIns"`
	PurposesConsent           Bits               `json:"purposesConsent"`
	PurposesLITransparency    Bits               `json:"purposesLITransparency"`
	PurposeOneTreatment       bool               `json:"purposeOneTreatment"`
	PublisherCC               string             `json:"publisherCC"`
	VendorConsents            Vendors            `json:"vendorConsents"`
	VendorLegitimateInterests Vendors            `json:"vendorLegitimateInterests"`
	PublisherRestrictions     []Restriction      `json:"publisherRestrictions,omitempty"`
	DisclosedVendors          *Vendors           `json:"disclosedVendors,omitempty"`
	PublisherPurposes         *PublisherPurposes `json:"publisherPurposes,omitempty"`
}

// Vendors is a set of vendor ids as a TC string section carries it.
type Vendors struct {
	// MaxVendorID is the section's declared highest id. Encode uses the
	// highest id in Ranges when it is 0.
	MaxVendorID int `json:"maxVendorId"`
	// IsRangeEncoding tells which wire form the section uses (or Encode will use).
	IsRangeEncoding bool    `json:"isRangeEncoding"`
	Ranges          []Range `json:"ranges,omitempty"`
}

// Has reports whether vendor id is in the set.
func (v *Vendors) Has(id int) bool { return hasID(v.Ranges, id) }

// Range is an inclusive span of vendor ids. It prints as "5" or "1-40".
type Range struct {
	Start, End int
}

func (r Range) MarshalText() ([]byte, error) {
	b := strconv.AppendInt(nil, int64(r.Start), 10)
	if r.End != r.Start {
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(r.End), 10)
	}
	return b, nil
}

func (r *Range) UnmarshalText(b []byte) error {
	lo, hi, isRange := strings.Cut(string(b), "-")
	start, err := strconv.Atoi(lo)
	end := start
	if err == nil && isRange {
		end, err = strconv.Atoi(hi)
	}
	if err != nil || start < 1 || end < start || end > maxVendor {
		return fmt.Errorf("consent: vendor range %q: %w", b, ErrOutOfRange)
	}
	*r = Range{start, end}
	return nil
}

// RangesOf returns ids as sorted, disjoint ranges.
func RangesOf(ids ...int) []Range {
	rs := make([]Range, len(ids))
	for i, id := range ids {
		rs[i] = Range{id, id}
	}
	return normalize(rs)
}

// hasID searches ranges that are sorted and disjoint.
func hasID(rs []Range, id int) bool {
	i, _ := slices.BinarySearchFunc(rs, id, func(r Range, id int) int {
		if r.End < id {
			return -1
		}
		if r.Start > id {
			return 1
		}
		return 0
	})
	return i < len(rs) && rs[i].Start <= id && id <= rs[i].End
}

// normalize sorts ranges and merges those that overlap or touch, in place.
func normalize(rs []Range) []Range {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b Range) int { return a.Start - b.Start })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.Start <= last.End+1 {
			last.End = max(last.End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Restriction is a publisher's override of how vendors may use one purpose.
type Restriction struct {
	Purpose int             `json:"purpose"`
	Type    RestrictionType `json:"type"`
	Vendors []Range         `json:"vendors,omitempty"`
}

// RestrictionType is a publisher restriction's 2-bit type.
type RestrictionType uint8

const (
	NotAllowed     RestrictionType = 0
	RequireConsent RestrictionType = 1
	RequireLI      RestrictionType = 2
	// undefinedRestriction is reserved by the spec; it decodes and means nothing.
	undefinedRestriction RestrictionType = 3
)

var restrictionNames = [...]string{"not_allowed", "require_consent", "require_li", "undefined"}

func (t RestrictionType) String() string {
	if int(t) < len(restrictionNames) {
		return restrictionNames[t]
	}
	return "invalid(" + strconv.Itoa(int(t)) + ")"
}

func (t RestrictionType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

func (t *RestrictionType) UnmarshalText(b []byte) error {
	i := slices.Index(restrictionNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("consent: restriction type %q: %w", b, ErrOutOfRange)
	}
	*t = RestrictionType(i)
	return nil
}

// PublisherPurposes is the publisher purposes segment (type 3).
type PublisherPurposes struct {
	Consent              Bits `json:"consent"`
	LITransparency       Bits `json:"liTransparency"`
	NumCustomPurposes    int  `json:"numCustomPurposes"`
	CustomConsent        Bits `json:"customConsent"`
	CustomLITransparency Bits `json:"customLITransparency"`
}

// Bits is a set of small 1-based ids held in a fixed-width field: purposes,
// special features, custom purposes. Id n is bit n-1 of the field on the
// wire and bit n-1 of the integer here. It prints as a JSON list of ids.
type Bits uint64

// BitsOf returns the set of ids; ids outside 1-64 are ignored.
func BitsOf(ids ...int) Bits {
	var b Bits
	for _, id := range ids {
		b = b.With(id)
	}
	return b
}

// Has reports whether id is in the set.
func (b Bits) Has(id int) bool { return id >= 1 && id <= 64 && b&(1<<(id-1)) != 0 }

// With returns b with id added; ids outside 1-64 are ignored.
func (b Bits) With(id int) Bits {
	if id < 1 || id > 64 {
		return b
	}
	return b | 1<<(id-1)
}

// IDs lists the ids in the set, ascending.
func (b Bits) IDs() []int {
	ids := make([]int, 0, bits.OnesCount64(uint64(b)))
	for v := uint64(b); v != 0; v &= v - 1 {
		ids = append(ids, bits.TrailingZeros64(v)+1)
	}
	return ids
}

// width is the number of bits the field needs: the highest id present.
func (b Bits) width() int { return bits.Len64(uint64(b)) }

func (b Bits) MarshalJSON() ([]byte, error) {
	out := []byte{'['}
	for i, id := range b.IDs() {
		if i > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendInt(out, int64(id), 10)
	}
	return append(out, ']'), nil
}

func (b *Bits) UnmarshalJSON(data []byte) error {
	var ids []int
	if err := json.Unmarshal(data, &ids); err != nil {
		return fmt.Errorf("consent: bits: %w", err)
	}
	var v Bits
	for _, id := range ids {
		if id < 1 || id > 64 {
			return fmt.Errorf("consent: bits: id %d: %w", id, ErrOutOfRange)
		}
		v = v.With(id)
	}
	*b = v
	return nil
}

// Decode parses a TC string: base64url segments joined by '.', with or
// without padding. Garbage returns an error wrapping ErrTooLong, ErrMalformed
// or ErrVersion, never a panic. A string that decodes may still fail Valid.
func Decode(s string) (*TCString, error) {
	if len(s) > MaxLen {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, len(s), MaxLen)
	}
	t := new(TCString)
	if _, f := parse([]byte(s), 0, t); f.err != nil {
		return nil, f.error()
	}
	return t, nil
}

// Valid reports whether the string meets the TCF v2.2 rules a vendor must
// check: TcfPolicyVersion at least 4, IsServiceSpecific set, and no legitimate
// interest for purposes 3-6. The error wraps ErrInvalid.
func (t *TCString) Valid() error {
	if why := invalid(t.TcfPolicyVersion, t.IsServiceSpecific, t.PurposesLITransparency); why != "" {
		return fmt.Errorf("%w: %s (TcfPolicyVersion %d, IsServiceSpecific %t, PurposesLITransparency %v)",
			ErrInvalid, why, t.TcfPolicyVersion, t.IsServiceSpecific, t.PurposesLITransparency.IDs())
	}
	return nil
}

// liForbidden are the purposes TCF v2.2 does not allow on legitimate interest
// in the string (3-6).
const liForbidden Bits = 1<<2 | 1<<3 | 1<<4 | 1<<5

// invalid is the one statement of the validity rules, shared by Valid and
// the allocation-free path. It returns why the string is invalid, or "".
func invalid(policyVersion int, serviceSpecific bool, li Bits) string {
	switch {
	case policyVersion < 4:
		return "TcfPolicyVersion below 4"
	case !serviceSpecific:
		return "IsServiceSpecific is 0"
	case li&liForbidden != 0:
		return "legitimate interest for a purpose among 3-6"
	}
	return ""
}

// Grants returns the activities the decoded string allows for vendorID, by
// the same rules as the package's Grants but read from the decoded fields.
// It is the reference the fast path is tested against.
func (t *TCString) Grants(vendorID int) Set {
	if t == nil || vendorID < 1 || vendorID > maxVendor ||
		invalid(t.TcfPolicyVersion, t.IsServiceSpecific, t.PurposesLITransparency) != "" {
		return 0
	}
	b := basis{
		consent:       t.PurposesConsent,
		li:            t.PurposesLITransparency,
		vendorConsent: t.VendorConsents.Has(vendorID),
		vendorLI:      t.VendorLegitimateInterests.Has(vendorID),
	}
	for _, r := range t.PublisherRestrictions {
		if hasID(r.Vendors, vendorID) {
			b.restrict(r.Purpose, r.Type)
		}
	}
	return b.set()
}

func (t *TCString) setHeader(h *header) {
	t.Version = h.version
	t.Created = fromDeciseconds(h.created)
	t.LastUpdated = fromDeciseconds(h.lastUpdated)
	t.CmpID = h.cmpID
	t.CmpVersion = h.cmpVersion
	t.ConsentScreen = h.consentScreen
	t.ConsentLanguage = string(h.language[:])
	t.VendorListVersion = h.vendorListVersion
	t.TcfPolicyVersion = h.policyVersion
	t.IsServiceSpecific = h.serviceSpecific
	t.UseNonStandardTexts = h.nonStandardTexts
	t.SpecialFeatureOptIns = h.specialFeatures
	t.PurposesConsent = h.purposesConsent
	t.PurposesLITransparency = h.purposesLI
	t.PurposeOneTreatment = h.purposeOneTreatment
	t.PublisherCC = string(h.publisherCC[:])
}

// TC string timestamps count deciseconds since the Unix epoch.
func fromDeciseconds(ds int64) time.Time { return time.UnixMilli(ds * 100).UTC() }
