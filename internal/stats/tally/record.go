package tally

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/ids"
	"github.com/adsyn/adsyn/internal/msgp"
	"github.com/adsyn/adsyn/internal/stats/audience"
)

// Counters are the additive figures of one record, dimension value or
// series point. Spend is kept in millionths of the currency unit so sums are
// exact whatever the grouping of the events.
type Counters struct {
	Impressions int64
	Viewable    int64
	Clicks      int64
	Conversions int64 // calls included
	Calls       int64
	SpendMicros int64
}

func (c *Counters) Add(d *Counters) {
	c.Impressions += d.Impressions
	c.Viewable += d.Viewable
	c.Clicks += d.Clicks
	c.Conversions += d.Conversions
	c.Calls += d.Calls
	c.SpendMicros += d.SpendMicros
}

// Scope is what a record counts for: a campaign or a site.
type Scope uint8

const (
	ScopeCampaign Scope = iota
	ScopeSite
)

// Prefix is the scope's first key token.
func (s Scope) Prefix() string {
	if s == ScopeSite {
		return "site"
	}
	return "camp"
}

// Dim is a breakdown dimension kept inside each record.
type Dim uint8

const (
	DimCreative Dim = iota // in campaign records
	DimSite                // in campaign records
	DimCampaign            // in site records
	DimSlot
	DimLanguage
	DimCountry
	DimDevice
	NumDims
)

var dimNames = [NumDims]string{"creative", "site", "campaign", "slot", "language", "country", "device"}

func (d Dim) String() string {
	if d < NumDims {
		return dimNames[d]
	}
	return "unknown"
}

// ParseDim returns the dimension named s.
func ParseDim(s string) (Dim, bool) {
	for d := range NumDims {
		if dimNames[d] == s {
			return d, true
		}
	}
	return 0, false
}

// Has reports whether records of scope s carry dimension d. Site records
// break down by campaign and not by creative: creatives are the
// advertisers', and a site shows thousands.
func (s Scope) Has(d Dim) bool {
	switch d {
	case DimSite, DimCreative:
		return s == ScopeCampaign
	case DimCampaign:
		return s == ScopeSite
	}
	return d < NumDims
}

// Breakdown limits: beyond maxValueLen bytes a value is cut; beyond the
// configured number of values per dimension, new values count as Other.
const (
	maxValueLen = 64
	Other       = "(other)"
)

// Record is one scope's counters for one hour, with the last stream
// sequence applied per partition: a message whose sequence is not above its
// partition's entry is already in the record.
//
// Clicks holds the event ids of the hour's last MaxClickIDs clicks Counted,
// oldest first, 16 bytes each. A click's id is fixed by its token, so a
// replayed token (or a copy of the event published again) is counted once
// whichever message, partition or aggregator brings it; the sequences only
// tell messages apart.
type Record struct {
	Totals Counters
	Dims   [NumDims]map[string]Counters
	Seq    []uint64
	Clicks []byte
	// Audience is a site's pageviews, searches, custom events, visitors and
	// their breakdowns (nil in campaign records, and before any).
	Audience *audience.Hour
	// Reach is a campaign's distinct visitors with an impression (nil in
	// site records, and before any); ReachImpressions the impressions they
	// had, for the average frequency.
	Reach            *audience.Visitors
	ReachImpressions int64

	seen map[event.ID]struct{} // Clicks as a set, made when first needed
}

// MaxClickIDs bounds the click ids a record remembers (16 bytes each): past
// it the oldest are forgotten, and a replay of one of those counts again.
const MaxClickIDs = 8192

// firstClick reports whether id was not counted in r yet, and remembers it.
// A zero id (a click from an old producer) is always Counted.
func (r *Record) firstClick(id event.ID) bool {
	if id == (event.ID{}) {
		return true
	}
	if r.seen == nil {
		r.seen = make(map[event.ID]struct{}, len(r.Clicks)/len(id)+1)
		for b := r.Clicks; len(b) >= len(id); b = b[len(id):] {
			r.seen[event.ID(b)] = struct{}{}
		}
	}
	if _, ok := r.seen[id]; ok {
		return false
	}
	if len(r.Clicks) >= MaxClickIDs*len(id) {
		delete(r.seen, event.ID(r.Clicks))
		r.Clicks = r.Clicks[len(id):]
	}
	r.Clicks = append(r.Clicks, id[:]...)
	r.seen[id] = struct{}{}
	return true
}

// Applied reports the last sequence of partition p in r.
func (r *Record) Applied(p int) uint64 {
	if p < len(r.Seq) {
		return r.Seq[p]
	}
	return 0
}

// SetApplied raises the last sequence of partition p in r to seq.
func (r *Record) SetApplied(p int, seq uint64) {
	for len(r.Seq) <= p {
		r.Seq = append(r.Seq, 0)
	}
	r.Seq[p] = max(r.Seq[p], seq)
}

// normValue bounds a breakdown value.
func normValue(s string) string {
	if len(s) <= maxValueLen && utf8.ValidString(s) {
		return s
	}
	if len(s) > maxValueLen {
		s = s[:maxValueLen]
	}
	return strings.ToValidUTF8(s, "")
}

// ValidID reports whether s can be a campaign or site id in a key: the
// one id rule, ids.Valid.
func ValidID(s string) bool { return ids.Valid(s) }

const hourLayout = "2006010215"

// Key returns the KV key of scope s, id and the hour holding t:
// camp.<id>.<YYYYMMDDHH> (UTC).
func Key(s Scope, id string, t time.Time) string {
	return KeyOf(s, id, t.Unix()/3600)
}

func KeyOf(s Scope, id string, hour int64) string {
	var b [96]byte
	k := append(b[:0], s.Prefix()...)
	k = append(k, '.')
	k = append(k, id...)
	k = append(k, '.')
	k = time.Unix(hour*3600, 0).UTC().AppendFormat(k, hourLayout)
	return string(k)
}

// ParseHour returns the unix hour of a key's last token.
func ParseHour(key string) (int64, bool) {
	i := strings.LastIndexByte(key, '.')
	if i < 0 {
		return 0, false
	}
	t, err := time.Parse(hourLayout, key[i+1:])
	if err != nil {
		return 0, false
	}
	return t.Unix() / 3600, true
}

// The stored form is a msgpack map: "t" totals, "s" sequences per
// partition, "d" dimension name to a bin holding the map of value to
// counters, "c" a bin of the click ids; counters are arrays of six
// integers. Unknown keys are skipped, so fields can be added.

// AppendMsgpack appends r's stored form to dst.
func (r *Record) AppendMsgpack(dst []byte) []byte {
	n := 2
	dims := 0
	for _, m := range r.Dims {
		if len(m) > 0 {
			dims++
		}
	}
	if dims > 0 {
		n++
	}
	if len(r.Clicks) > 0 {
		n++
	}
	var reach []byte
	if r.Reach != nil {
		if reach, _ = r.Reach.MarshalBinary(); reach != nil { // a sketch always encodes
			n += 2 // "v" and "vn"
		}
	}
	var aud []byte
	if r.Audience != nil {
		var err error
		if aud, err = msgpack.Marshal(r.Audience); err != nil {
			panic(err) // plain fields and a sketch: encoding cannot fail
		}
		n++
	}
	dst = append(dst, 0x80|byte(n))
	dst = msgp.AppendString(dst, "t")
	dst = appendCounters(dst, &r.Totals)
	dst = msgp.AppendString(dst, "s")
	dst = msgp.AppendArrayHeader(dst, len(r.Seq))
	for _, s := range r.Seq {
		dst = msgp.AppendUint(dst, s)
	}
	if len(r.Clicks) > 0 {
		dst = msgp.AppendString(dst, "c")
		dst = msgp.AppendBin(dst, r.Clicks)
	}
	if reach != nil {
		dst = msgp.AppendString(dst, "v")
		dst = msgp.AppendBin(dst, reach)
		dst = msgp.AppendString(dst, "vn")
		dst = msgp.AppendInt(dst, r.ReachImpressions)
	}
	if aud != nil {
		// A bin, so that a reader that does not want it skips it whole.
		dst = msgp.AppendString(dst, "a")
		dst = msgp.AppendBin(dst, aud)
	}
	if dims > 0 {
		dst = msgp.AppendString(dst, "d")
		dst = msgp.AppendMapHeader(dst, dims)
		for d, m := range r.Dims {
			if len(m) == 0 {
				continue
			}
			dst = msgp.AppendString(dst, dimNames[d])
			// Each dimension is a bin holding its map, so a reader skips
			// the ones it does not want without parsing them.
			dst = append(dst, 0xc6, 0, 0, 0, 0)
			at := len(dst)
			dst = msgp.AppendMapHeader(dst, len(m))
			for v, c := range m {
				dst = msgp.AppendString(dst, v)
				dst = appendCounters(dst, &c)
			}
			binary.BigEndian.PutUint32(dst[at-4:], uint32(len(dst)-at))
		}
	}
	return dst
}

func appendCounters(dst []byte, c *Counters) []byte {
	dst = append(dst, 0x96)
	for _, v := range [...]int64{c.Impressions, c.Viewable, c.Clicks, c.Conversions, c.Calls, c.SpendMicros} {
		dst = msgp.AppendInt(dst, v)
	}
	return dst
}

// Limits on a stored record, so a corrupt value cannot make us allocate much.
const (
	maxRecordSize = 8 << 20
	maxSeqLen     = 4096
	maxMapLen     = 1 << 20
)

// DimMask selects the dimensions to decode; the others are skipped.
type DimMask uint32

// AllDims selects every dimension; WithAudience a site's audience counts
// and visitors or a campaign's reach as well, and AudienceMaskOf the
// audience breakdowns to decode with them (AllAudience: every one).
const (
	AllDims      DimMask = 1<<NumDims - 1
	WithAudience DimMask = 1 << 15
	AllAudience  DimMask = (1<<audience.NumDimensions - 1) << 16
)

func MaskOf(d Dim) DimMask { return 1 << d }

// AudienceMaskOf selects audience breakdown d (with WithAudience).
func AudienceMaskOf(d audience.Dimension) DimMask { return 1 << (16 + d) }

// DecodeRecord decodes a stored record with every dimension.
func DecodeRecord(b []byte) (*Record, error) {
	return DecodeRecordDims(b, AllDims|WithAudience|AllAudience)
}

func DecodeRecordDims(b []byte, want DimMask) (*Record, error) {
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("stats: record of %d bytes", len(b))
	}
	d := msgp.AcquireDecoder(b)
	defer msgp.ReleaseDecoder(d)
	r := &Record{}
	if err := r.decode(d.Decoder, want); err != nil {
		return nil, fmt.Errorf("stats: decode record: %w", err)
	}
	if d.Unread() != 0 {
		return nil, fmt.Errorf("stats: decode record: %d trailing bytes", d.Unread())
	}
	return r, nil
}

func (r *Record) decode(dec *msgpack.Decoder, want DimMask) error {
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	for range max(n, 0) {
		k, err := dec.DecodeString()
		if err != nil {
			return err
		}
		switch k {
		case "t":
			err = decodeCounters(dec, &r.Totals)
		case "s":
			err = r.decodeSeq(dec)
		case "d":
			err = r.decodeDims(dec, want)
		case "c":
			err = r.decodeClicks(dec)
		case "v":
			if want&WithAudience == 0 {
				err = dec.Skip()
				break
			}
			err = r.decodeReach(dec)
		case "vn":
			r.ReachImpressions, err = dec.DecodeInt64()
		case "a":
			if want&WithAudience == 0 {
				err = dec.Skip()
				break
			}
			err = r.decodeAudience(dec, want)
		default:
			err = dec.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Record) decodeSeq(dec *msgpack.Decoder) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n > maxSeqLen {
		return fmt.Errorf("%d partitions", n)
	}
	r.Seq = make([]uint64, max(n, 0))
	for i := range r.Seq {
		if r.Seq[i], err = dec.DecodeUint64(); err != nil {
			return err
		}
	}
	return nil
}

func (r *Record) decodeAudience(dec *msgpack.Decoder, want DimMask) error {
	b, err := dec.DecodeBytes()
	if err != nil {
		return err
	}
	r.Audience = &audience.Hour{}
	return decodeHour(b, r.Audience, want)
}

func (r *Record) decodeReach(dec *msgpack.Decoder) error {
	b, err := dec.DecodeBytes()
	if err != nil {
		return err
	}
	r.Reach = &audience.Visitors{}
	return r.Reach.UnmarshalBinary(b)
}

func (r *Record) decodeClicks(dec *msgpack.Decoder) error {
	n, err := dec.DecodeBytesLen()
	if err != nil {
		return err
	}
	const size = len(event.ID{})
	if n < 0 || n > MaxClickIDs*size || n%size != 0 {
		return fmt.Errorf("click ids of %d bytes", n)
	}
	r.Clicks = make([]byte, n)
	return dec.ReadFull(r.Clicks)
}

func (r *Record) decodeDims(dec *msgpack.Decoder, want DimMask) error {
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	for range max(n, 0) {
		name, err := dec.DecodeString()
		if err != nil {
			return err
		}
		dim, ok := ParseDim(name)
		if !ok || want&MaskOf(dim) == 0 {
			if err := dec.Skip(); err != nil {
				return err
			}
			continue
		}
		if _, err := dec.DecodeBytesLen(); err != nil {
			return err
		}
		m, err := dec.DecodeMapLen()
		if err != nil {
			return err
		}
		if m > maxMapLen {
			return fmt.Errorf("%d values", m)
		}
		vals := make(map[string]Counters, max(m, 0))
		for range max(m, 0) {
			v, err := dec.DecodeString()
			if err != nil {
				return err
			}
			var c Counters
			if err := decodeCounters(dec, &c); err != nil {
				return err
			}
			vals[v] = c
		}
		r.Dims[dim] = vals
	}
	return nil
}

func decodeCounters(dec *msgpack.Decoder, c *Counters) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	fields := [...]*int64{&c.Impressions, &c.Viewable, &c.Clicks, &c.Conversions, &c.Calls, &c.SpendMicros}
	for i := range max(n, 0) {
		v, err := dec.DecodeInt64()
		if err != nil {
			return err
		}
		if i < len(fields) {
			*fields[i] = v
		}
	}
	return nil
}
