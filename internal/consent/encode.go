package consent

import (
	"encoding/base64"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"
)

// Encode builds the TC string for t: the core segment, then the disclosed
// vendors and publisher purposes segments when t has them, each base64url
// without padding. Vendor sets are written in the form IsRangeEncoding names.
// Conveniences for callers building strings: Version 0 means 2, a zero time
// means the epoch, MaxVendorID 0 means the highest id in Ranges. A value that
// does not fit its field returns an error wrapping ErrOutOfRange.
func Encode(t *TCString) (string, error) {
	var w writer
	w.core(t)
	segs := []string{w.text()}
	if t.DisclosedVendors != nil {
		w.reset()
		w.int(1, 3, "SegmentType")
		w.vendors(t.DisclosedVendors, "DisclosedVendors")
		segs = append(segs, w.text())
	}
	if p := t.PublisherPurposes; p != nil {
		w.reset()
		w.int(3, 3, "SegmentType")
		w.field(p.Consent, 24, "PublisherPurposes.Consent")
		w.field(p.LITransparency, 24, "PublisherPurposes.LITransparency")
		w.int(p.NumCustomPurposes, 6, "PublisherPurposes.NumCustomPurposes")
		w.field(p.CustomConsent, p.NumCustomPurposes, "PublisherPurposes.CustomConsent")
		w.field(p.CustomLITransparency, p.NumCustomPurposes, "PublisherPurposes.CustomLITransparency")
		segs = append(segs, w.text())
	}
	if w.err != nil {
		return "", w.err
	}
	return strings.Join(segs, "."), nil
}

// writer appends big-endian bit fields; the first error sticks.
type writer struct {
	buf []byte
	n   int // bits written
	err error
}

func (w *writer) reset() { w.buf, w.n = w.buf[:0], 0 }

func (w *writer) text() string { return base64.RawURLEncoding.EncodeToString(w.buf) }

func (w *writer) put(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>i&1 == 1 {
			w.buf[len(w.buf)-1] |= 0x80 >> (w.n % 8)
		}
		w.n++
	}
}

func (w *writer) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf("%w: "+format, append([]any{ErrOutOfRange}, args...)...)
	}
}

func (w *writer) int(v, n int, field string) {
	if v < 0 || v >= 1<<n {
		w.fail("%s = %d does not fit in %d bits", field, v, n)
		return
	}
	w.put(uint64(v), n)
}

func (w *writer) bool(b bool) {
	if b {
		w.put(1, 1)
	} else {
		w.put(0, 1)
	}
}

// field writes an n-bit field whose first bit is id 1.
func (w *writer) field(b Bits, n int, name string) {
	if b.width() > n {
		w.fail("%s = %v has ids above %d", name, b.IDs(), n)
		return
	}
	if n > 0 {
		w.put(bits.Reverse64(uint64(b))>>(64-n), n)
	}
}

func (w *writer) letters(s, field string) {
	if len(s) != 2 {
		w.fail("%s = %q is not two letters", field, s)
		return
	}
	for i := range 2 {
		c := s[i] | 0x20 // lower case
		if c < 'a' || c > 'z' {
			w.fail("%s = %q is not two letters", field, s)
			return
		}
		w.put(uint64(c-'a'), 6)
	}
}

func (w *writer) time(t time.Time, field string) {
	var ds int64
	if !t.IsZero() {
		ds = t.UnixMilli() / 100
	}
	if ds < 0 || ds >= 1<<36 {
		w.fail("%s = %v is outside the 36-bit decisecond range", field, t)
		return
	}
	w.put(uint64(ds), 36)
}

func (w *writer) core(t *TCString) {
	w.header(t)
	w.vendors(&t.VendorConsents, "VendorConsents")
	w.vendors(&t.VendorLegitimateInterests, "VendorLegitimateInterests")
	w.int(len(t.PublisherRestrictions), 12, "number of PublisherRestrictions")
	for i, r := range t.PublisherRestrictions {
		name := fmt.Sprintf("PublisherRestrictions[%d]", i)
		w.int(r.Purpose, 6, name+".Purpose")
		w.int(int(r.Type), 2, name+".Type")
		w.entries(w.ranges(r.Vendors, name+".Vendors"), name+".Vendors")
	}
}

// header writes the core fields up to PublisherCC.
func (w *writer) header(t *TCString) {
	version := t.Version
	if version == 0 {
		version = 2
	}
	w.int(version, 6, "Version")
	w.time(t.Created, "Created")
	w.time(t.LastUpdated, "LastUpdated")
	w.int(t.CmpID, 12, "CmpID")
	w.int(t.CmpVersion, 12, "CmpVersion")
	w.int(t.ConsentScreen, 6, "ConsentScreen")
	w.letters(t.ConsentLanguage, "ConsentLanguage")
	w.int(t.VendorListVersion, 12, "VendorListVersion")
	w.int(t.TcfPolicyVersion, 6, "TcfPolicyVersion")
	w.bool(t.IsServiceSpecific)
	w.bool(t.UseNonStandardTexts)
	w.field(t.SpecialFeatureOptIns, 12, "SpecialFeatureOptIns")
	w.field(t.PurposesConsent, 24, "PurposesConsent")
	w.field(t.PurposesLITransparency, 24, "PurposesLITransparency")
	w.bool(t.PurposeOneTreatment)
	w.letters(t.PublisherCC, "PublisherCC")
}

func (w *writer) vendors(v *Vendors, name string) {
	rs := w.ranges(v.Ranges, name)
	maxID := v.MaxVendorID
	if top := lastID(rs); maxID == 0 {
		maxID = top
	} else if top > maxID {
		w.fail("%s has vendor %d above MaxVendorID %d", name, top, maxID)
		return
	}
	w.int(maxID, 16, name+".MaxVendorID")
	w.bool(v.IsRangeEncoding)
	if v.IsRangeEncoding {
		w.entries(rs, name)
		return
	}
	next := 1
	for _, r := range rs {
		w.put(0, r.Start-next)
		for range r.End - r.Start + 1 {
			w.put(1, 1)
		}
		next = r.End + 1
	}
	w.put(0, maxID+1-next)
}

// ranges checks rs and returns a sorted, merged copy.
func (w *writer) ranges(rs []Range, name string) []Range {
	for _, r := range rs {
		if r.Start < 1 || r.End < r.Start || r.End > maxVendor {
			w.fail("%s has range %d-%d, want 1 <= start <= end <= %d", name, r.Start, r.End, maxVendor)
			return nil
		}
	}
	return normalize(slices.Clone(rs))
}

func (w *writer) entries(rs []Range, name string) {
	w.int(len(rs), 12, name+" NumEntries")
	for _, r := range rs {
		w.bool(r.Start != r.End)
		w.int(r.Start, 16, name)
		if r.Start != r.End {
			w.int(r.End, 16, name)
		}
	}
}

func lastID(rs []Range) int {
	if len(rs) == 0 {
		return 0
	}
	return rs[len(rs)-1].End
}
