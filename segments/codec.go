package segments

import (
	"fmt"
	"math"
	"time"

	"github.com/adsyn/adsyn/internal/msgp"
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
	dst = msgp.AppendString(dst, "v")
	dst = msgp.AppendString(dst, r.Visitor)
	if len(r.Segments) > 0 {
		dst = msgp.AppendString(dst, "s")
		dst = msgp.AppendArrayHeader(dst, len(r.Segments))
		for i := range r.Segments {
			s := &r.Segments[i]
			m := 3
			if s.Rule != "" {
				m++
			}
			dst = append(dst, 0x80|byte(m))
			dst = msgp.AppendString(dst, "i")
			dst = msgp.AppendString(dst, s.ID)
			dst = msgp.AppendString(dst, "s")
			dst = msgp.AppendFloat64(dst, s.Score)
			dst = msgp.AppendString(dst, "t")
			dst = msgp.AppendInt(dst, s.At)
			if s.Rule != "" {
				dst = msgp.AppendString(dst, "r")
				dst = msgp.AppendString(dst, s.Rule)
			}
		}
	}
	if len(r.Langs) > 0 {
		dst = msgp.AppendString(dst, "l")
		dst = msgp.AppendArrayHeader(dst, len(r.Langs))
		for _, l := range r.Langs {
			dst = msgp.AppendString(dst, l)
		}
	}
	if len(r.Caps) > 0 {
		dst = msgp.AppendString(dst, "f")
		dst = msgp.AppendArrayHeader(dst, len(r.Caps))
		for i := range r.Caps {
			c := &r.Caps[i]
			dst = append(dst, 0x82)
			dst = msgp.AppendString(dst, "c")
			dst = msgp.AppendString(dst, c.Campaign)
			dst = msgp.AppendString(dst, "t")
			dst = msgp.AppendArrayHeader(dst, len(c.Times))
			for _, t := range c.Times {
				dst = msgp.AppendInt(dst, t)
			}
		}
	}
	dst = msgp.AppendString(dst, "ls")
	dst = msgp.AppendInt(dst, r.LastSeen)
	if r.Events != 0 {
		dst = msgp.AppendString(dst, "n")
		dst = msgp.AppendUint(dst, r.Events)
	}
	if r.Since != 0 {
		dst = msgp.AppendString(dst, "si")
		dst = msgp.AppendInt(dst, r.Since)
	}
	if len(r.Applied) > 0 {
		dst = msgp.AppendString(dst, "ap")
		dst = msgp.AppendArrayHeader(dst, len(r.Applied))
		for _, q := range r.Applied {
			dst = msgp.AppendUint(dst, q)
		}
	}
	return dst
}

// DecodeRecord decodes a stored record.
func DecodeRecord(b []byte, r *Record) error {
	if len(b) > MaxRecordSize {
		return fmt.Errorf("segments: record of %d bytes exceeds %d: %w", len(b), MaxRecordSize, ErrBadRecord)
	}
	d := msgp.AcquireDecoder(b)
	defer msgp.ReleaseDecoder(d)
	*r = Record{}
	if err := d.Decode(r); err != nil {
		return fmt.Errorf("segments: decode record: %w: %w", ErrBadRecord, err)
	}
	if d.Unread() != 0 {
		return fmt.Errorf("segments: record has %d trailing bytes: %w", d.Unread(), ErrBadRecord)
	}
	return nil
}

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
