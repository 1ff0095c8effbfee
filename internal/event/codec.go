package event

import (
	"fmt"

	"github.com/adsyn/adsyn/internal/msgp"
)

// Keys are the struct tags as msgpack fixstr (0xa0 | length, then the
// bytes), encoded once: the encoder appends them whole.
const (
	keyID, keyTS, keyKind, keyConsent = "\xa2id", "\xa2ts", "\xa1k", "\xa2cs"
	keyVisitor, keyUser, keySite      = "\xa1v", "\xa2uu", "\xa1s"
	keySlot, keyCampaign, keyCreative = "\xa2sl", "\xa2ca", "\xa2cr"
	keyURL, keyReferrer, keyQuery     = "\xa1u", "\xa1r", "\xa1q"
	keyLang, keyCountry, keyIP        = "\xa1l", "\xa2co", "\xa2ip"
	keyName, keyArea, keyCategories   = "\xa1n", "\xa2ar", "\xa1c"
	keyDevice, keyNewVisitor, keyVal  = "\xa1d", "\xa2nv", "\xa3val"
	keyType, keyOS, keyOSVersion      = "\xa1t", "\xa1o", "\xa2ov"
	keyModel, keyBrowser              = "\xa1m", "\xa1b"
)

// appendField appends key and v unless v is empty, counting it in n.
func appendField(dst []byte, n *int, key, v string) []byte {
	if v == "" {
		return dst
	}
	*n++
	return msgp.AppendString(append(dst, key...), v)
}

// AppendMsgpack appends e's msgpack form to dst: a map keyed by the struct
// tags, empty fields left out. It does not allocate beyond growing dst.
func (e *Event) AppendMsgpack(dst []byte) []byte {
	dst, at := msgp.Map16(dst) // the count is patched below
	dst = msgp.AppendBin(append(dst, keyID...), e.ID[:])
	dst = msgp.AppendInt(append(dst, keyTS...), e.TS)
	dst = msgp.AppendUint(append(dst, keyKind...), uint64(e.Kind))
	dst = msgp.AppendUint(append(dst, keyConsent...), uint64(e.Consent))
	n := 4
	dst = appendField(dst, &n, keyVisitor, e.Visitor)
	dst = appendField(dst, &n, keyUser, e.User)
	dst = appendField(dst, &n, keySite, e.Site)
	dst = appendField(dst, &n, keySlot, e.Slot)
	dst = appendField(dst, &n, keyCampaign, e.Campaign)
	dst = appendField(dst, &n, keyCreative, e.Creative)
	dst = appendField(dst, &n, keyURL, e.URL)
	dst = appendField(dst, &n, keyReferrer, e.Referrer)
	dst = appendField(dst, &n, keyQuery, e.Query)
	dst = appendField(dst, &n, keyLang, e.Lang)
	dst = appendField(dst, &n, keyCountry, e.Country)
	dst = appendField(dst, &n, keyIP, e.IP)
	dst = appendField(dst, &n, keyName, e.Name)
	dst = appendField(dst, &n, keyArea, e.Area)
	if len(e.Categories) > 0 {
		dst = append(dst, keyCategories...)
		dst = msgp.AppendArrayHeader(dst, len(e.Categories))
		for _, c := range e.Categories {
			dst = msgp.AppendString(dst, c)
		}
		n++
	}
	if e.Device != (Device{}) {
		dst = append(dst, keyDevice...)
		d := &e.Device
		var dat, m int
		dst, dat = msgp.Map16(dst)
		dst = appendField(dst, &m, keyType, d.Type)
		dst = appendField(dst, &m, keyOS, d.OS)
		dst = appendField(dst, &m, keyOSVersion, d.OSVersion)
		dst = appendField(dst, &m, keyModel, d.Model)
		dst = appendField(dst, &m, keyBrowser, d.Browser)
		msgp.PatchMap16(dst, dat, m)
		n++
	}
	if e.NewVisitor {
		dst = append(dst, keyNewVisitor...)
		dst = append(dst, 0xc3) // msgpack true
		n++
	}
	if e.Value != 0 {
		dst = append(dst, keyVal...)
		dst = msgp.AppendFloat64(dst, e.Value)
		n++
	}
	msgp.PatchMap16(dst, at, n)
	return dst
}

// Marshal returns e's msgpack form.
func (e *Event) Marshal() []byte { return e.AppendMsgpack(nil) }

// Unmarshal decodes one event from b.
func Unmarshal(b []byte, e *Event) error {
	if len(b) > MaxEventSize {
		return fmt.Errorf("event: %d bytes exceeds %d", len(b), MaxEventSize)
	}
	if n, ok := decodeFast(b, e); ok {
		if n != len(b) {
			return fmt.Errorf("event: %d trailing bytes", len(b)-n)
		}
		return nil
	}
	d := msgp.AcquireDecoder(b)
	defer msgp.ReleaseDecoder(d)
	if err := d.Decode(e); err != nil {
		return fmt.Errorf("event: decode: %w", err)
	}
	if d.Unread() != 0 {
		return fmt.Errorf("event: %d trailing bytes", d.Unread())
	}
	return nil
}

// DecodeBatch decodes every event in a message body (one event, or a batch of
// concatenated events) and calls fn with each. The *Event passed to fn is
// reused: fn copies what it keeps. An event's strings share one copy of its
// bytes, so a string kept long after the event (a map key, a cache entry)
// is better cloned. It stops at the first error.
func DecodeBatch(body []byte, fn func(*Event) error) (int, error) {
	if len(body) > MaxBatch*MaxEventSize {
		return 0, fmt.Errorf("event: message of %d bytes too large", len(body))
	}
	var e Event
	n := 0
	for len(body) > 0 {
		if n == MaxBatch {
			return n, ErrTooMany
		}
		e.Reset()
		size, ok := decodeFast(body, &e)
		if !ok {
			var err error
			if size, err = decodeLibrary(body, &e); err != nil {
				return n, fmt.Errorf("event: decode #%d: %w", n, err)
			}
		}
		if size > MaxEventSize {
			return n, fmt.Errorf("event: #%d exceeds %d bytes", n, MaxEventSize)
		}
		body = body[size:]
		n++
		if err := fn(&e); err != nil {
			return n, err
		}
	}
	return n, nil
}

// decodeLibrary decodes the event at the start of b with msgpack/v5 and
// reports how many bytes it took: for every form decodeFast leaves.
func decodeLibrary(b []byte, e *Event) (int, error) {
	d := msgp.AcquireDecoder(b)
	defer msgp.ReleaseDecoder(d)
	if err := d.Decode(e); err != nil {
		return 0, err
	}
	return len(b) - d.Unread(), nil
}
