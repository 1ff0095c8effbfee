package event

import (
	"math"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/msgp"
)

// The string fields the fast decoder fills, in one table so that their
// spans can be recorded while reading and turned into strings at the end.
const (
	fVisitor = iota
	fUser
	fSite
	fSlot
	fCampaign
	fCreative
	fURL
	fReferrer
	fQuery
	fLang
	fCountry
	fIP
	fName
	fArea
	fType
	fOS
	fOSVersion
	fModel
	fBrowser
	numStringFields
)

// stringField returns the string field of an event key.
func stringField(key []byte) (int, bool) {
	switch string(key) {
	case "v":
		return fVisitor, true
	case "uu":
		return fUser, true
	case "s":
		return fSite, true
	case "sl":
		return fSlot, true
	case "ca":
		return fCampaign, true
	case "cr":
		return fCreative, true
	case "u":
		return fURL, true
	case "r":
		return fReferrer, true
	case "q":
		return fQuery, true
	case "l":
		return fLang, true
	case "co":
		return fCountry, true
	case "ip":
		return fIP, true
	case "n":
		return fName, true
	case "ar":
		return fArea, true
	}
	return 0, false
}

// deviceField returns the string field of a device key.
func deviceField(key []byte) (int, bool) {
	switch string(key) {
	case "t":
		return fType, true
	case "o":
		return fOS, true
	case "ov":
		return fOSVersion, true
	case "m":
		return fModel, true
	case "b":
		return fBrowser, true
	}
	return 0, false
}

// maxFastCategories bounds the categories the fast decoder takes; an event
// with more goes to msgpack/v5.
const maxFastCategories = 32

// span is where a string value lies in the event's bytes; n < 0: absent.
type span struct{ off, n int }

// fastEvent is what decodeFast read, applied to the event only once the
// whole event has been read.
type fastEvent struct {
	id                 ID
	ts                 int64
	kind               Kind
	consent            consent.Set
	value              float64
	newVisitor         bool
	hasID, hasTS, hasK bool
	hasCS, hasV, hasNV bool
	strs               [numStringFields]span
	cats               [maxFastCategories]span
	ncats              int // -1: no "c" key
}

// decodeFast decodes the event at the start of b when it is in the forms
// AppendMsgpack writes (a map with short string keys, each value in the
// form the encoder gives it), and reports how many bytes it took. On
// anything else (an unknown key, another form, a truncated value) it
// reports ok false and leaves e as it was, for msgpack/v5 to decode. It
// sets only the fields present, as msgpack/v5 does, and all of e's strings
// share one allocation: a copy of the event's bytes.
func decodeFast(b []byte, e *Event) (n int, ok bool) {
	var f fastEvent
	f.ncats = -1
	for i := range f.strs {
		f.strs[i].n = -1
	}
	pairs, r, ok := msgp.ReadMapLen(b)
	if !ok {
		return 0, false
	}
	for range pairs {
		var key []byte
		if key, r, ok = msgp.ReadFixStr(r); !ok {
			return 0, false
		}
		if r, ok = f.readValue(b, key, r); !ok {
			return 0, false
		}
	}
	n = len(b) - len(r)
	f.apply(string(b[:n]), e)
	return n, true
}

// readValue reads the value of key from r; b is the whole input, to which
// string spans are relative.
func (f *fastEvent) readValue(b, key, r []byte) (rest []byte, ok bool) {
	switch string(key) {
	case "id":
		var v []byte
		if v, r, ok = msgp.ReadBin8(r); !ok || len(v) != len(f.id) {
			return r, false
		}
		copy(f.id[:], v)
		f.hasID = true
	case "ts":
		f.ts, r, ok = msgp.ReadInt(r)
		f.hasTS = true
	case "k":
		var v uint64
		v, r, ok = msgp.ReadUint(r)
		ok = ok && v <= math.MaxUint8
		f.kind, f.hasK = Kind(v), true
	case "cs":
		var v uint64
		v, r, ok = msgp.ReadUint(r)
		ok = ok && v <= math.MaxUint16
		f.consent, f.hasCS = consent.Set(v), true
	case "val":
		f.value, r, ok = msgp.ReadFloat64(r)
		f.hasV = true
	case "nv":
		f.newVisitor, r, ok = msgp.ReadBool(r)
		f.hasNV = true
	case "c":
		var count int
		if count, r, ok = msgp.ReadArrayLen(r); !ok || count > maxFastCategories {
			return r, false
		}
		f.ncats = count
		for i := range count {
			var s []byte
			if s, r, ok = msgp.ReadStr(r); !ok {
				return r, false
			}
			f.cats[i] = span{len(b) - len(r) - len(s), len(s)}
		}
	case "d":
		var pairs int
		if pairs, r, ok = msgp.ReadMapLen(r); !ok {
			return r, false
		}
		for range pairs {
			var k []byte
			if k, r, ok = msgp.ReadFixStr(r); !ok {
				return r, false
			}
			field, known := deviceField(k)
			if !known {
				return r, false
			}
			if r, ok = f.readString(b, field, r); !ok {
				return r, false
			}
		}
	default:
		field, known := stringField(key)
		if !known {
			return r, false
		}
		return f.readString(b, field, r)
	}
	return r, ok
}

func (f *fastEvent) readString(b []byte, field int, r []byte) ([]byte, bool) {
	s, r, ok := msgp.ReadStr(r)
	if ok {
		f.strs[field] = span{len(b) - len(r) - len(s), len(s)}
	}
	return r, ok
}

// apply sets e's fields that were present; own holds the event's bytes.
func (f *fastEvent) apply(own string, e *Event) {
	if f.hasID {
		e.ID = f.id
	}
	if f.hasTS {
		e.TS = f.ts
	}
	if f.hasK {
		e.Kind = f.kind
	}
	if f.hasCS {
		e.Consent = f.consent
	}
	if f.hasV {
		e.Value = f.value
	}
	if f.hasNV {
		e.NewVisitor = f.newVisitor
	}
	for field, dst := range [numStringFields]*string{
		fVisitor: &e.Visitor, fUser: &e.User, fSite: &e.Site, fSlot: &e.Slot, fCampaign: &e.Campaign,
		fCreative: &e.Creative, fURL: &e.URL, fReferrer: &e.Referrer, fQuery: &e.Query, fLang: &e.Lang,
		fCountry: &e.Country, fIP: &e.IP, fName: &e.Name, fArea: &e.Area, fType: &e.Device.Type,
		fOS: &e.Device.OS, fOSVersion: &e.Device.OSVersion, fModel: &e.Device.Model, fBrowser: &e.Device.Browser,
	} {
		if s := f.strs[field]; s.n >= 0 {
			*dst = own[s.off : s.off+s.n]
		}
	}
	if f.ncats >= 0 {
		cats := e.Categories[:0]
		if cats == nil {
			cats = make([]string, 0, f.ncats)
		}
		for _, s := range f.cats[:f.ncats] {
			cats = append(cats, own[s.off:s.off+s.n])
		}
		e.Categories = cats
	}
}
