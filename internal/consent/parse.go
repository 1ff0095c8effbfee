package consent

import (
	"bytes"
	"fmt"
	"math/bits"
)

// parse walks a TC string once, for both Decode and Grants, so the two
// cannot disagree. It always notes what the string says about vendor want
// (the basis the grant rules read). With out == nil it is the
// allocation-free path and stops at a core that fails the validity rules,
// since such a string grants nothing. With out != nil it also fills *out.
func parse(tc []byte, want int, out *TCString) (b basis, f fault) {
	if len(tc) > MaxLen {
		return b, fault{ErrTooLong, "input", "longer than MaxLen"}
	}
	var r reader
	core, rest, more := cut(tc)
	r.init(core, "core")
	h := r.header()
	if r.err != nil {
		return b, r.fault()
	}
	if out != nil {
		out.setHeader(&h)
	} else if why := invalid(h.policyVersion, h.serviceSpecific, h.purposesLI); why != "" {
		return b, fault{ErrInvalid, "core", why}
	}
	b.consent, b.li = h.purposesConsent, h.purposesLI

	var vc, vli *Vendors
	var pr *[]Restriction
	if out != nil {
		vc, vli, pr = &out.VendorConsents, &out.VendorLegitimateInterests, &out.PublisherRestrictions
	}
	r.section = "vendor consents"
	b.vendorConsent = r.vendors(want, vc)
	r.section = "vendor legitimate interests"
	b.vendorLI = r.vendors(want, vli)
	r.section = "publisher restrictions"
	r.restrictions(want, &b, pr)
	if r.err != nil {
		return b, r.fault()
	}

	var seen uint8 // segment types met so far, as bits
	for more {
		var seg []byte
		seg, rest, more = cut(rest)
		r.init(seg, "segment")
		typ := r.int(3)
		switch {
		case r.err != nil:
		case typ == 0:
			r.fail(ErrMalformed, "second core segment")
		case seen&(1<<typ) != 0 && (typ == 1 || typ == 3):
			r.fail(ErrMalformed, "segment type repeated")
		case typ == 1:
			r.section = "disclosed vendors"
			var dv *Vendors
			if out != nil {
				dv = new(Vendors)
				out.DisclosedVendors = dv
			}
			r.vendors(0, dv)
		case typ == 3:
			r.section = "publisher purposes"
			r.publisherPurposes(out)
		}
		// Other types (2 was "allowed vendors" before v2.2) are skipped once
		// their text is known to be base64url.
		if r.err != nil {
			return b, r.fault()
		}
		seen |= 1 << typ
	}
	return b, fault{}
}

// cut splits off the first '.'-separated segment.
func cut(s []byte) (seg, rest []byte, more bool) {
	if i := bytes.IndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, nil, false
}

// fault is a parse failure kept as plain values, so the allocation-free path
// can fail without building an error; Decode turns it into one.
type fault struct {
	err     error // a sentinel
	section string
	why     string
}

func (f fault) error() error { return fmt.Errorf("%w: %s: %s", f.err, f.section, f.why) }

// header holds the core segment's fixed fields.
type header struct {
	version, cmpID, cmpVersion, consentScreen, vendorListVersion, policyVersion int
	created, lastUpdated                                                        int64
	language, publisherCC                                                       [2]byte
	serviceSpecific, nonStandardTexts, purposeOneTreatment                      bool
	specialFeatures, purposesConsent, purposesLI                                Bits
}

func (r *reader) header() (h header) {
	h.version = r.int(6)
	if r.err == nil && h.version != 2 {
		r.fail(ErrVersion, "version is not 2")
		return h
	}
	h.created = int64(r.bits(36))
	h.lastUpdated = int64(r.bits(36))
	h.cmpID = r.int(12)
	h.cmpVersion = r.int(12)
	h.consentScreen = r.int(6)
	h.language = r.letters()
	h.vendorListVersion = r.int(12)
	h.policyVersion = r.int(6)
	h.serviceSpecific = r.bit()
	h.nonStandardTexts = r.bit()
	h.specialFeatures = r.field(12)
	h.purposesConsent = r.field(24)
	h.purposesLI = r.field(24)
	h.purposeOneTreatment = r.bit()
	h.publisherCC = r.letters()
	return h
}

// vendors reads a vendor section (MaxVendorId, IsRangeEncoding, then a bit
// field or range entries) and reports whether want is in it. With out != nil
// it also collects the set.
func (r *reader) vendors(want int, out *Vendors) bool {
	maxID := r.int(16)
	isRange := r.bit()
	if out != nil {
		out.MaxVendorID, out.IsRangeEncoding = maxID, isRange
	}
	if r.err != nil {
		return false
	}
	if !isRange {
		start := r.offset()
		if !r.skip(maxID) {
			return false
		}
		if out != nil {
			out.Ranges = r.runs(start, maxID)
		}
		return want >= 1 && want <= maxID && r.bitAt(start+want-1)
	}
	has := false
	n := r.int(12)
	for range n {
		lo, hi := r.rangeEntry(maxID)
		if r.err != nil {
			return false
		}
		has = has || lo <= want && want <= hi
		if out != nil {
			out.Ranges = append(out.Ranges, Range{lo, hi})
		}
	}
	if out != nil {
		out.Ranges = normalize(out.Ranges)
	}
	return has
}

// restrictions reads the publisher restrictions section, noting in b those
// that name vendor want. With out != nil it also collects them.
func (r *reader) restrictions(want int, b *basis, out *[]Restriction) {
	n := r.int(12)
	for range n {
		purpose := r.int(6)
		typ := RestrictionType(r.int(2))
		entries := r.int(12)
		hit := false
		var vendors []Range
		for range entries {
			lo, hi := r.rangeEntry(maxVendor)
			if r.err != nil {
				return
			}
			hit = hit || lo <= want && want <= hi
			if out != nil {
				vendors = append(vendors, Range{lo, hi})
			}
		}
		if r.err != nil {
			return
		}
		if hit {
			b.restrict(purpose, typ)
		}
		if out != nil {
			*out = append(*out, Restriction{Purpose: purpose, Type: typ, Vendors: normalize(vendors)})
		}
	}
}

// rangeEntry reads IsARange, StartOrOnlyVendorId and, for a range,
// EndVendorId. Ids must lie in 1..maxID and a range must not run backwards.
func (r *reader) rangeEntry(maxID int) (lo, hi int) {
	isRange := r.bit()
	lo = r.int(16)
	hi = lo
	if isRange {
		hi = r.int(16)
	}
	switch {
	case r.err != nil:
	case lo == 0:
		r.fail(ErrMalformed, "vendor id 0 in a range entry")
	case hi < lo:
		r.fail(ErrMalformed, "range entry ends before it starts")
	case hi > maxID:
		r.fail(ErrMalformed, "range entry beyond MaxVendorId")
	default:
		return lo, hi
	}
	return 0, 0
}

func (r *reader) publisherPurposes(out *TCString) {
	consent := r.field(24)
	li := r.field(24)
	n := r.int(6)
	custom := r.field(n)
	customLI := r.field(n)
	if r.err == nil && out != nil {
		out.PublisherPurposes = &PublisherPurposes{
			Consent:              consent,
			LITransparency:       li,
			NumCustomPurposes:    n,
			CustomConsent:        custom,
			CustomLITransparency: customLI,
		}
	}
}

// alphabet is base64url (RFC 4648 §5); sextet maps a character to its 6-bit
// value, or to bad.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

const bad = 0xFF

var sextet = func() (t [256]byte) {
	for i := range t {
		t[i] = bad
	}
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// reader reads big-endian bit fields straight from one segment's base64url
// text, so nothing is decoded into a buffer: characters are loaded 6 bits at
// a time into an accumulator. Errors are sticky: after the first, reads
// return zero and the caller checks err once per section.
type reader struct {
	s       []byte // segment text without padding, all base64url
	next    int    // next character of s to load
	acc     uint64 // loaded bits, the unread ones in the low nacc bits
	nacc    int
	end     int    // bits available (whole bytes, as a base64 decoder would give)
	section string // what is being read, for errors
	err     error
	where   string // section at the first error
	why     string
}

func (r *reader) init(seg []byte, section string) {
	*r = reader{section: section}
	n := len(seg)
	for n > 0 && seg[n-1] == '=' {
		n--
	}
	switch pad := len(seg) - n; {
	case n == 0:
		r.fail(ErrMalformed, "empty segment")
		return
	case pad > 2 || pad > 0 && len(seg)%4 != 0:
		r.fail(ErrMalformed, "bad base64 padding")
		return
	case n%4 == 1:
		r.fail(ErrMalformed, "bad base64 length")
		return
	}
	var all byte // bad has the high bit set, valid sextets never
	for _, c := range seg[:n] {
		all |= sextet[c]
	}
	if all&0x80 != 0 {
		r.fail(ErrMalformed, "not base64url")
		return
	}
	r.s = seg[:n]
	r.end = n * 6 / 8 * 8
}

func (r *reader) fail(err error, why string) {
	if r.err == nil {
		r.err, r.where, r.why = err, r.section, why
	}
}

func (r *reader) fault() fault { return fault{r.err, r.where, r.why} }

// offset is the number of bits read so far.
func (r *reader) offset() int { return r.next*6 - r.nacc }

// bits reads an n-bit (n <= 64) big-endian unsigned field.
func (r *reader) bits(n int) uint64 {
	if r.err != nil {
		return 0
	}
	if n > r.end-r.offset() {
		r.fail(ErrMalformed, "truncated")
		return 0
	}
	var v uint64
	for n > 0 {
		k := min(n, 32) // so acc never needs more than 37 bits
		for r.nacc < k {
			r.acc = r.acc<<6 | uint64(sextet[r.s[r.next]])
			r.next++
			r.nacc += 6
		}
		r.nacc -= k
		v = v<<k | r.acc>>r.nacc&(1<<k-1)
		n -= k
	}
	return v
}

func (r *reader) int(n int) int { return int(r.bits(n)) }

func (r *reader) bit() bool { return r.bits(1) == 1 }

// field reads an n-bit field whose first bit is id 1.
func (r *reader) field(n int) Bits {
	if n == 0 {
		return 0
	}
	return Bits(bits.Reverse64(r.bits(n)) >> (64 - n))
}

// letters reads two 6-bit letters (a=0) as upper case.
func (r *reader) letters() (l [2]byte) {
	for i := range l {
		v := r.bits(6)
		if v > 25 {
			r.fail(ErrMalformed, "letter out of a-z")
			return [2]byte{}
		}
		l[i] = 'A' + byte(v)
	}
	return l
}

// skip moves past n bits, reporting whether they were there.
func (r *reader) skip(n int) bool {
	if r.err == nil && n > r.end-r.offset() {
		r.fail(ErrMalformed, "truncated")
	}
	if r.err != nil {
		return false
	}
	p := r.offset() + n
	r.next, r.acc, r.nacc = p/6, 0, 0
	if off := p % 6; off != 0 {
		r.acc = uint64(sextet[r.s[r.next]])
		r.next++
		r.nacc = 6 - off
	}
	return true
}

// bitAt reads the bit at p, which the caller has already checked is < end.
func (r *reader) bitAt(p int) bool { return sextet[r.s[p/6]]>>(5-p%6)&1 == 1 }

// runs turns the n-bit vendor field at start into ranges (bit i is vendor i+1).
func (r *reader) runs(start, n int) []Range {
	var rs []Range
	for i := range n {
		if !r.bitAt(start + i) {
			continue
		}
		if k := len(rs) - 1; k >= 0 && rs[k].End == i {
			rs[k].End = i + 1
		} else {
			rs = append(rs, Range{i + 1, i + 1})
		}
	}
	return rs
}
