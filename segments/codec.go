package segments

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/vmihailenco/msgpack/v5/msgpcode"

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

// DecodeRecord decodes a stored record: what AppendMsgpack or msgpack/v5
// wrote. It reads field by field rather than by reflection, because every
// edge decodes every record write it watches.
func DecodeRecord(b []byte, r *Record) error {
	if len(b) > MaxRecordSize {
		return fmt.Errorf("segments: record of %d bytes exceeds %d: %w", len(b), MaxRecordSize, ErrBadRecord)
	}
	d := msgp.AcquireDecoder(b)
	defer msgp.ReleaseDecoder(d)
	*r = Record{}
	if err := r.decode(d); err != nil {
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

// decode reads the record; unknown keys are skipped, as msgpack/v5 skips them.
func (r *Record) decode(d *msgp.Decoder) error {
	return decodeStruct(d, recordFields, func(k string) (err error) {
		switch k {
		case "v":
			r.Visitor, err = d.DecodeString()
		case "s":
			r.Segments, err = decodeArray(d, r.Segments[:0], decodeScore)
		case "l":
			r.Langs, err = decodeArray(d, r.Langs[:0], func(d *msgp.Decoder, l *string) (err error) {
				*l, err = d.DecodeString()
				return err
			})
		case "f":
			r.Caps, err = decodeArray(d, r.Caps[:0], decodeCap)
		case "ls":
			r.LastSeen, err = d.DecodeInt64()
		case "n":
			r.Events, err = d.DecodeUint64()
		case "si":
			r.Since, err = d.DecodeInt64()
		case "ap":
			r.Applied, err = decodeArray(d, r.Applied[:0], func(d *msgp.Decoder, q *uint64) (err error) {
				*q, err = d.DecodeUint64()
				return err
			})
		default:
			err = d.Skip()
		}
		if err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
		return nil
	})
}

// The keys of Record, Score and Cap in field order (msgpack/v5's array form).
var (
	recordFields = []string{"v", "s", "l", "f", "ls", "n", "si", "ap"}
	scoreFields  = []string{"i", "s", "t", "r"}
	capFields    = []string{"c", "t"}
)

func decodeScore(d *msgp.Decoder, s *Score) error {
	return decodeStruct(d, scoreFields, func(k string) (err error) {
		switch k {
		case "i":
			s.ID, err = d.DecodeString()
		case "s":
			s.Score, err = d.DecodeFloat64()
		case "t":
			s.At, err = d.DecodeInt64()
		case "r":
			s.Rule, err = d.DecodeString()
		default:
			err = d.Skip()
		}
		return err
	})
}

func decodeCap(d *msgp.Decoder, c *Cap) error {
	return decodeStruct(d, capFields, func(k string) (err error) {
		switch k {
		case "c":
			c.Campaign, err = d.DecodeString()
		case "t":
			c.Times, err = decodeArray(d, c.Times[:0], func(d *msgp.Decoder, t *int64) (err error) {
				*t, err = d.DecodeInt64()
				return err
			})
		default:
			err = d.Skip()
		}
		return err
	})
}

// decodeStruct reads a struct as msgpack/v5 does: a map of keys (nil: the
// zero value), or an array of every field in order (empty: the zero value),
// handing each value to field. The caller's struct starts at its zero value.
func decodeStruct(d *msgp.Decoder, keys []string, field func(k string) error) error {
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	if msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32 {
		n, err := d.DecodeArrayLen()
		switch {
		case err != nil || n <= 0:
			return err
		case n != len(keys):
			return fmt.Errorf("array of %d for a struct of %d fields", n, len(keys))
		}
		for _, k := range keys {
			if err := field(k); err != nil {
				return err
			}
		}
		return nil
	}
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	for range max(n, 0) {
		k, err := d.DecodeString()
		if err != nil {
			return err
		}
		if err := field(k); err != nil {
			return err
		}
	}
	return nil
}

// decodeArray reads an array (nil: none) into dst with one, element by
// element. Its length is trusted only as far as the bytes left could hold it.
func decodeArray[T any](d *msgp.Decoder, dst []T, one func(*msgp.Decoder, *T) error) ([]T, error) {
	n, err := d.DecodeArrayLen()
	if err != nil || n <= 0 {
		return dst, err
	}
	if n > d.Unread() {
		return dst, fmt.Errorf("array of %d in %d bytes", n, d.Unread())
	}
	dst = slices.Grow(dst, n)[:n]
	for i := range dst {
		var zero T
		dst[i] = zero
		if err := one(d, &dst[i]); err != nil {
			return dst, err
		}
	}
	return dst, nil
}
