package segments

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// MaxRecordSize bounds a stored record; a larger value is refused on read.
const MaxRecordSize = 64 << 10

// AppendMsgpack appends r's msgpack form to dst: a map keyed by the struct
// tags, the same bytes a reader decodes with msgpack/v5. It is hand-written
// because the builder encodes a record per visitor per flush.
func (r *Record) AppendMsgpack(dst []byte) []byte {
	n := 2 // v, ls are always written
	for _, set := range [...]bool{len(r.Segments) > 0, len(r.Langs) > 0, len(r.Caps) > 0, r.Events != 0, r.Since != 0, len(r.Applied) > 0} {
		if set {
			n++
		}
	}
	dst = append(dst, 0x80|byte(n))
	dst = appendStr(dst, "v")
	dst = appendStr(dst, r.Visitor)
	if len(r.Segments) > 0 {
		dst = appendStr(dst, "s")
		dst = appendArray(dst, len(r.Segments))
		for i := range r.Segments {
			s := &r.Segments[i]
			m := 3
			if s.Rule != "" {
				m++
			}
			dst = append(dst, 0x80|byte(m))
			dst = appendStr(dst, "i")
			dst = appendStr(dst, s.ID)
			dst = appendStr(dst, "s")
			dst = append(dst, 0xcb)
			dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(s.Score))
			dst = appendStr(dst, "t")
			dst = appendInt(dst, s.At)
			if s.Rule != "" {
				dst = appendStr(dst, "r")
				dst = appendStr(dst, s.Rule)
			}
		}
	}
	if len(r.Langs) > 0 {
		dst = appendStr(dst, "l")
		dst = appendArray(dst, len(r.Langs))
		for _, l := range r.Langs {
			dst = appendStr(dst, l)
		}
	}
	if len(r.Caps) > 0 {
		dst = appendStr(dst, "f")
		dst = appendArray(dst, len(r.Caps))
		for i := range r.Caps {
			c := &r.Caps[i]
			dst = append(dst, 0x82)
			dst = appendStr(dst, "c")
			dst = appendStr(dst, c.Campaign)
			dst = appendStr(dst, "t")
			dst = appendArray(dst, len(c.Times))
			for _, t := range c.Times {
				dst = appendInt(dst, t)
			}
		}
	}
	dst = appendStr(dst, "ls")
	dst = appendInt(dst, r.LastSeen)
	if r.Events != 0 {
		dst = appendStr(dst, "n")
		dst = appendUint(dst, r.Events)
	}
	if r.Since != 0 {
		dst = appendStr(dst, "si")
		dst = appendInt(dst, r.Since)
	}
	if len(r.Applied) > 0 {
		dst = appendStr(dst, "ap")
		dst = appendArray(dst, len(r.Applied))
		for _, q := range r.Applied {
			dst = appendUint(dst, q)
		}
	}
	return dst
}

// DecodeRecord decodes a stored record.
func DecodeRecord(b []byte, r *Record) error {
	if len(b) > MaxRecordSize {
		return fmt.Errorf("segments: record of %d bytes exceeds %d: %w", len(b), MaxRecordSize, ErrBadRecord)
	}
	d := decoderPool.Get().(*decoder)
	defer decoderPool.Put(d)
	d.r.Reset(b)
	d.dec.Reset(&d.r)
	*r = Record{}
	if err := d.dec.Decode(r); err != nil {
		return fmt.Errorf("segments: decode record: %w: %w", ErrBadRecord, err)
	}
	if d.r.Len() != 0 {
		return fmt.Errorf("segments: record has %d trailing bytes: %w", d.r.Len(), ErrBadRecord)
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

// Decayed returns the score as of now (unix ms) under halfLife. A score is
// never raised by a clock that runs backwards.
func (s *Score) Decayed(now int64, halfLife time.Duration) float64 {
	return s.Score * decay(now-s.At, halfLife)
}

// decay is the factor a score keeps after dt milliseconds.
func decay(dt int64, halfLife time.Duration) float64 {
	if dt <= 0 || halfLife <= 0 {
		return 1
	}
	return math.Exp2(-float64(dt) / float64(halfLife.Milliseconds()))
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

func appendArray(dst []byte, n int) []byte {
	switch {
	case n < 16:
		return append(dst, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdd), uint32(n))
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
