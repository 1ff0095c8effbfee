package event

import (
	"fmt"

	"github.com/adsyn/adsyn/internal/msgp"
)

// AppendMsgpack appends e's msgpack form to dst: a map keyed by the struct
// tags, empty fields left out. It does not allocate beyond growing dst.
func (e *Event) AppendMsgpack(dst []byte) []byte {
	dst, at := msgp.Map16(dst) // the count is patched below
	dst = msgp.AppendString(dst, "id")
	dst = msgp.AppendBin(dst, e.ID[:])
	dst = msgp.AppendString(dst, "ts")
	dst = msgp.AppendInt(dst, e.TS)
	dst = msgp.AppendString(dst, "k")
	dst = msgp.AppendUint(dst, uint64(e.Kind))
	dst = msgp.AppendString(dst, "cs")
	dst = msgp.AppendUint(dst, uint64(e.Consent))
	n := 4
	for _, f := range [...]struct {
		tag, val string
	}{
		{"v", e.Visitor}, {"uu", e.User}, {"s", e.Site}, {"sl", e.Slot},
		{"ca", e.Campaign}, {"cr", e.Creative}, {"u", e.URL}, {"r", e.Referrer},
		{"q", e.Query}, {"l", e.Lang}, {"co", e.Country}, {"ip", e.IP}, {"n", e.Name},
		{"ar", e.Area},
	} {
		if f.val != "" {
			dst = msgp.AppendString(dst, f.tag)
			dst = msgp.AppendString(dst, f.val)
			n++
		}
	}
	if len(e.Categories) > 0 {
		dst = msgp.AppendString(dst, "c")
		dst = msgp.AppendArrayHeader(dst, len(e.Categories))
		for _, c := range e.Categories {
			dst = msgp.AppendString(dst, c)
		}
		n++
	}
	if e.Device != (Device{}) {
		dst = msgp.AppendString(dst, "d")
		d := e.Device
		var dat, m int
		dst, dat = msgp.Map16(dst)
		for _, f := range [...]struct{ tag, val string }{
			{"t", d.Type}, {"o", d.OS}, {"ov", d.OSVersion}, {"m", d.Model}, {"b", d.Browser},
		} {
			if f.val != "" {
				dst = msgp.AppendString(dst, f.tag)
				dst = msgp.AppendString(dst, f.val)
				m++
			}
		}
		msgp.PatchMap16(dst, dat, m)
		n++
	}
	if e.NewVisitor {
		dst = msgp.AppendString(dst, "nv")
		dst = append(dst, 0xc3) // msgpack true
		n++
	}
	if e.Value != 0 {
		dst = msgp.AppendString(dst, "val")
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
// reused: fn copies what it keeps. It stops at the first error.
func DecodeBatch(body []byte, fn func(*Event) error) (int, error) {
	if len(body) > MaxBatch*MaxEventSize {
		return 0, fmt.Errorf("event: message of %d bytes too large", len(body))
	}
	d := msgp.AcquireDecoder(body)
	defer msgp.ReleaseDecoder(d)
	var e Event
	n := 0
	for d.Unread() > 0 {
		if n == MaxBatch {
			return n, ErrTooMany
		}
		e.Reset()
		before := d.Unread()
		if err := d.Decode(&e); err != nil {
			return n, fmt.Errorf("event: decode #%d: %w", n, err)
		}
		if before-d.Unread() > MaxEventSize {
			return n, fmt.Errorf("event: #%d exceeds %d bytes", n, MaxEventSize)
		}
		n++
		if err := fn(&e); err != nil {
			return n, err
		}
	}
	return n, nil
}
