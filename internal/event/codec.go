package event

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// AppendMsgpack appends e's msgpack form to dst: a map keyed by the struct
// tags, empty fields left out. It does not allocate beyond growing dst.
func (e *Event) AppendMsgpack(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, 0xde, 0, 0) // map16; the count is patched below
	n := 0
	dst = appendStr(dst, "id")
	dst = append(dst, 0xc4, 16)
	dst = append(dst, e.ID[:]...)
	dst = appendStr(dst, "ts")
	dst = appendInt(dst, e.TS)
	dst = appendStr(dst, "k")
	dst = appendUint(dst, uint64(e.Kind))
	dst = appendStr(dst, "cs")
	dst = appendUint(dst, uint64(e.Consent))
	n += 4
	for _, f := range [...]struct {
		tag, val string
	}{
		{"v", e.Visitor}, {"uu", e.User}, {"s", e.Site}, {"sl", e.Slot},
		{"ca", e.Campaign}, {"cr", e.Creative}, {"u", e.URL}, {"r", e.Referrer},
		{"q", e.Query}, {"l", e.Lang}, {"co", e.Country}, {"ip", e.IP}, {"n", e.Name},
		{"ar", e.Area},
	} {
		if f.val != "" {
			dst = appendStr(dst, f.tag)
			dst = appendStr(dst, f.val)
			n++
		}
	}
	if len(e.Categories) > 0 {
		dst = appendStr(dst, "c")
		dst = appendArrayHeader(dst, len(e.Categories))
		for _, c := range e.Categories {
			dst = appendStr(dst, c)
		}
		n++
	}
	if e.Device != (Device{}) {
		dst = appendStr(dst, "d")
		d := e.Device
		dst = append(dst, 0xde, 0, 0)
		at, m := len(dst)-2, 0
		for _, f := range [...]struct{ tag, val string }{
			{"t", d.Type}, {"o", d.OS}, {"ov", d.OSVersion}, {"m", d.Model},
		} {
			if f.val != "" {
				dst = appendStr(dst, f.tag)
				dst = appendStr(dst, f.val)
				m++
			}
		}
		binary.BigEndian.PutUint16(dst[at:], uint16(m))
		n++
	}
	if e.Value != 0 {
		dst = appendStr(dst, "val")
		dst = append(dst, 0xcb)
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(e.Value))
		n++
	}
	binary.BigEndian.PutUint16(dst[start+1:], uint16(n))
	return dst
}

func appendStr(dst []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		dst = append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		dst = append(dst, 0xda)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 0xdb)
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	}
	return append(dst, s...)
}

func appendUint(dst []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(dst, byte(v))
	case v <= math.MaxUint8:
		return append(dst, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), v)
}

func appendInt(dst []byte, v int64) []byte {
	if v >= 0 {
		return appendUint(dst, uint64(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(v))
}

func appendArrayHeader(dst []byte, n int) []byte {
	if n < 16 {
		return append(dst, 0x90|byte(n))
	}
	return binary.BigEndian.AppendUint16(append(dst, 0xdc), uint16(n))
}

// Marshal returns e's msgpack form.
func (e *Event) Marshal() []byte { return e.AppendMsgpack(nil) }

// Unmarshal decodes one event from b.
func Unmarshal(b []byte, e *Event) error {
	if len(b) > MaxEventSize {
		return fmt.Errorf("event: %d bytes exceeds %d", len(b), MaxEventSize)
	}
	d := acquireDecoder(b)
	defer releaseDecoder(d)
	if err := d.dec.Decode(e); err != nil {
		return fmt.Errorf("event: decode: %w", err)
	}
	if d.r.Len() != 0 {
		return fmt.Errorf("event: %d trailing bytes", d.r.Len())
	}
	return nil
}

type decoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var decoderPool = sync.Pool{New: func() any {
	d := &decoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

func acquireDecoder(b []byte) *decoder {
	d := decoderPool.Get().(*decoder)
	d.r.Reset(b)
	d.dec.Reset(&d.r)
	return d
}

func releaseDecoder(d *decoder) {
	d.r.Reset(nil)
	decoderPool.Put(d)
}

// DecodeBatch decodes every event in a message body (one event, or a batch of
// concatenated events) and calls fn with each. The *Event passed to fn is
// reused: fn copies what it keeps. It stops at the first error.
func DecodeBatch(body []byte, fn func(*Event) error) (int, error) {
	if len(body) > MaxBatch*MaxEventSize {
		return 0, fmt.Errorf("event: message of %d bytes too large", len(body))
	}
	d := acquireDecoder(body)
	defer releaseDecoder(d)
	var e Event
	n := 0
	for d.r.Len() > 0 {
		if n == MaxBatch {
			return n, ErrTooMany
		}
		e.Reset()
		before := d.r.Len()
		if err := d.dec.Decode(&e); err != nil {
			return n, fmt.Errorf("event: decode #%d: %w", n, err)
		}
		if before-d.r.Len() > MaxEventSize {
			return n, fmt.Errorf("event: #%d exceeds %d bytes", n, MaxEventSize)
		}
		n++
		if err := fn(&e); err != nil {
			return n, err
		}
	}
	return n, nil
}
