package tally

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/stats/audience"
)

// DecodeFacts appends the facts of the events in a message body (one event
// or a batch, as event.DecodeBatch reads it) to facts, and returns how many
// events it read. It reads only the fields a fact keeps, straight from the
// bytes: the hot path of the aggregator, where decoding whole events cost
// more than counting them.
//
// The facts' strings point into body, which must not change while they
// live; Tally.Add and Live.Add copy what they keep. On a fault it returns
// the facts of the events before it, the same way each time.
func DecodeFacts(body []byte, fallbackMS int64, facts []Fact) ([]Fact, int, error) {
	if len(body) > event.MaxBatch*event.MaxEventSize {
		return facts, 0, fmt.Errorf("event: message of %d bytes too large", len(body))
	}
	r := reader{b: body}
	var e event.Event
	n := 0
	for r.i < len(r.b) {
		if n == event.MaxBatch {
			return facts, n, event.ErrTooMany
		}
		start := r.i
		e = event.Event{}
		if err := r.event(&e); err != nil {
			return facts, n, fmt.Errorf("event: decode #%d: %w", n, err)
		}
		if r.i-start > event.MaxEventSize {
			return facts, n, fmt.Errorf("event: #%d exceeds %d bytes", n, event.MaxEventSize)
		}
		n++
		if f, ok := FactOf(&e, fallbackMS); ok {
			facts = append(facts, f)
		}
	}
	return facts, n, nil
}

var errShort = errors.New("msgpack: unexpected end of data")

// reader reads MessagePack values from b without allocating; the strings
// it returns point into b.
type reader struct {
	b []byte
	i int
}

func (r *reader) byte() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errShort
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

func (r *reader) next(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.i {
		return nil, errShort
	}
	s := r.b[r.i : r.i+n]
	r.i += n
	return s, nil
}

// uintN reads an n-byte big-endian unsigned integer.
func (r *reader) uintN(n int) (uint64, error) {
	s, err := r.next(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(s[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(s)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(s)), nil
	}
	return binary.BigEndian.Uint64(s), nil
}

// str reads a str or a bin as a string pointing into r.b; nil is "".
func (r *reader) str() (string, error) {
	b, err := r.bytes()
	if err != nil || len(b) == 0 {
		return "", err
	}
	return unsafe.String(&b[0], len(b)), nil
}

// bytes reads a str or a bin; nil is empty.
func (r *reader) bytes() ([]byte, error) {
	c, err := r.byte()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xc0:
		return nil, nil
	case c == 0xd9 || c == 0xc4:
		n, err = r.uintN(1)
	case c == 0xda || c == 0xc5:
		n, err = r.uintN(2)
	case c == 0xdb || c == 0xc6:
		n, err = r.uintN(4)
	default:
		return nil, fmt.Errorf("msgpack: invalid code=%x decoding string/bytes length", c)
	}
	if err != nil {
		return nil, err
	}
	return r.next(int(n))
}

// int reads any integer form as int64, as msgpack/v5 does; nil is 0.
func (r *reader) int() (int64, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	return r.intCode(c)
}

func (r *reader) intCode(c byte) (int64, error) {
	switch {
	case c <= 0x7f || c >= 0xe0:
		return int64(int8(c)), nil
	case c == 0xc0:
		return 0, nil
	}
	var v uint64
	var err error
	switch c {
	case 0xcc:
		v, err = r.uintN(1)
	case 0xcd:
		v, err = r.uintN(2)
	case 0xce:
		v, err = r.uintN(4)
	case 0xcf, 0xd3:
		v, err = r.uintN(8)
	case 0xd0:
		v, err = r.uintN(1)
		v = uint64(int8(v))
	case 0xd1:
		v, err = r.uintN(2)
		v = uint64(int16(v))
	case 0xd2:
		v, err = r.uintN(4)
		v = uint64(int32(v))
	default:
		return 0, fmt.Errorf("msgpack: invalid code=%x decoding int64", c)
	}
	return int64(v), err
}

// float reads a float or an integer as float64.
func (r *reader) float() (float64, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	switch c {
	case 0xca:
		v, err := r.uintN(4)
		return float64(math.Float32frombits(uint32(v))), err
	case 0xcb:
		v, err := r.uintN(8)
		return math.Float64frombits(v), err
	}
	v, err := r.intCode(c)
	if err != nil {
		return 0, fmt.Errorf("msgpack: invalid code=%x decoding float64", c)
	}
	return float64(v), nil
}

// skip passes over one value of any type.
func (r *reader) skip() error {
	c, err := r.byte()
	if err != nil {
		return err
	}
	var n uint64
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return nil
	case c >= 0xa0 && c <= 0xbf:
		_, err = r.next(int(c & 0x1f))
		return err
	case c >= 0x90 && c <= 0x9f:
		return r.skipN(int(c & 0x0f))
	case c >= 0x80 && c <= 0x8f:
		return r.skipN(2 * int(c&0x0f))
	}
	switch c {
	case 0xcc, 0xd0:
		_, err = r.next(1)
	case 0xcd, 0xd1:
		_, err = r.next(2)
	case 0xce, 0xd2, 0xca:
		_, err = r.next(4)
	case 0xcf, 0xd3, 0xcb:
		_, err = r.next(8)
	case 0xd9, 0xc4, 0xda, 0xc5, 0xdb, 0xc6:
		r.i--
		_, err = r.bytes()
	case 0xdc:
		if n, err = r.uintN(2); err == nil {
			err = r.skipN(int(n))
		}
	case 0xdd:
		if n, err = r.uintN(4); err == nil {
			err = r.skipN(int(n))
		}
	case 0xde:
		if n, err = r.uintN(2); err == nil {
			err = r.skipN(2 * int(n))
		}
	case 0xdf:
		if n, err = r.uintN(4); err == nil {
			err = r.skipN(2 * int(n))
		}
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16, with a type byte
		_, err = r.next(1 + 1<<(c-0xd4))
	case 0xc7, 0xc8, 0xc9:
		if n, err = r.uintN(1 << (c - 0xc7)); err == nil {
			_, err = r.next(int(n) + 1)
		}
	default:
		return fmt.Errorf("msgpack: invalid code=%x", c)
	}
	return err
}

func (r *reader) skipN(n int) error {
	if n > len(r.b)-r.i { // every value takes a byte at least
		return errShort
	}
	for range n {
		if err := r.skip(); err != nil {
			return err
		}
	}
	return nil
}

// eventTags are event.Event's field tags in field order: the order of an
// event encoded as an array.
var eventTags = [...]string{"id", "ts", "k", "v", "uu", "s", "sl", "ca", "cr", "u", "r", "q", "c", "l", "co", "d", "ip", "cs", "val", "n", "ar", "nv"}

var deviceTags = [...]string{"t", "o", "ov", "m", "b"}

// structLen reads the header of a struct: a map of fields, or an array of
// every field in order (msgpack/v5 reads both); nil or an empty array is
// the zero value (zero reports so).
func (r *reader) structLen(fields int) (n int, array, zero bool, err error) {
	c, err := r.byte()
	if err != nil {
		return 0, false, false, err
	}
	var v uint64
	switch {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), false, false, nil
	case c >= 0x90 && c <= 0x9f:
		v = uint64(c & 0x0f)
	case c == 0xc0:
		return 0, false, true, nil
	case c == 0xde || c == 0xdf:
		v, err = r.uintN(2 << (c - 0xde))
		return int(v), false, false, err
	case c == 0xdc || c == 0xdd:
		if v, err = r.uintN(2 << (c - 0xdc)); err != nil {
			return 0, false, false, err
		}
	default:
		return 0, false, false, fmt.Errorf("msgpack: invalid code=%x decoding map length", c)
	}
	if v == 0 {
		return 0, true, true, nil
	}
	if v != uint64(fields) {
		return 0, false, false, errors.New("msgpack: number of fields in array-encoded struct has changed")
	}
	return int(v), true, false, nil
}

// event reads the fields of one event that facts use; the others are
// checked for their type, as decoding the whole event would, and skipped.
func (r *reader) event(e *event.Event) error {
	n, array, zero, err := r.structLen(len(eventTags))
	if err != nil || zero {
		return err
	}
	for i := range n {
		k := eventTags[i%len(eventTags)]
		if !array {
			if k, err = r.str(); err != nil {
				return err
			}
		}
		if err := r.eventField(e, k); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) eventField(e *event.Event, k string) (err error) {
	switch k {
	case "id":
		var b []byte
		if b, err = r.bytes(); err == nil {
			if len(b) > len(e.ID) {
				return fmt.Errorf("msgpack: event.ID len is %d, but msgpack has %d elements", len(e.ID), len(b))
			}
			copy(e.ID[:], b)
		}
	case "ts":
		e.TS, err = r.int()
	case "k":
		var v int64
		v, err = r.int()
		e.Kind = event.Kind(v)
	case "v":
		e.Visitor, err = r.str()
	case "s":
		e.Site, err = r.str()
	case "sl":
		e.Slot, err = r.str()
	case "ca":
		e.Campaign, err = r.str()
	case "cr":
		e.Creative, err = r.str()
	case "u":
		e.URL, err = r.str()
	case "r":
		e.Referrer, err = r.str()
	case "l":
		e.Lang, err = r.str()
	case "co":
		e.Country, err = r.str()
	case "n":
		e.Name, err = r.str()
	case "val":
		e.Value, err = r.float()
	case "d":
		err = r.device(&e.Device)
	case "uu", "q", "ip", "ar":
		_, err = r.bytes()
	case "cs":
		_, err = r.int()
	case "nv":
		err = r.bool()
	case "c":
		err = r.strings()
	default:
		err = r.skip()
	}
	return err
}

func (r *reader) device(d *event.Device) error {
	n, array, zero, err := r.structLen(len(deviceTags))
	if err != nil {
		return err
	}
	if zero {
		*d = event.Device{}
		return nil
	}
	for i := range n {
		k := deviceTags[i%len(deviceTags)]
		if !array {
			if k, err = r.str(); err != nil {
				return err
			}
		}
		switch k {
		case "t":
			d.Type, err = r.str()
		case "o":
			d.OS, err = r.str()
		case "b":
			d.Browser, err = r.str()
		case "ov", "m":
			_, err = r.bytes()
		default:
			err = r.skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// bool checks that a bool (or nil) comes next.
func (r *reader) bool() error {
	c, err := r.byte()
	if err != nil {
		return err
	}
	if c != 0xc0 && c != 0xc2 && c != 0xc3 {
		return fmt.Errorf("msgpack: invalid code=%x decoding bool", c)
	}
	return nil
}

// strings checks that an array of strings (or nil) comes next.
func (r *reader) strings() error {
	c, err := r.byte()
	if err != nil {
		return err
	}
	var n uint64
	switch {
	case c == 0xc0:
		return nil
	case c >= 0x90 && c <= 0x9f:
		n = uint64(c & 0x0f)
	case c == 0xdc || c == 0xdd:
		if n, err = r.uintN(2 << (c - 0xdc)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("msgpack: invalid code=%x decoding array length", c)
	}
	for range n {
		if _, err := r.bytes(); err != nil {
			return err
		}
	}
	return nil
}

// decodeHour reads a site's audience hour as msgpack/v5 writes
// audience.Hour, with the breakdowns want selects (AudienceMaskOf); the
// others are skipped unread, which is most of a range query's work.
func decodeHour(b []byte, h *audience.Hour, want DimMask) error {
	r := reader{b: b}
	n, _, zero, err := r.structLen(-1)
	if err != nil || zero {
		return err
	}
	for range n {
		k, err := r.str()
		if err != nil {
			return err
		}
		switch k {
		case "pv":
			h.Pageviews, err = r.uint()
		case "se":
			h.Searches, err = r.uint()
		case "ev":
			h.Events, err = r.uint()
		case "vi":
			var v []byte
			if v, err = r.bytes(); err == nil {
				err = h.Visitors.UnmarshalBinary(v)
			}
		case "bd":
			err = r.breakdowns(&h.Breakdowns, want)
		default:
			err = r.skip()
		}
		if err != nil {
			return err
		}
	}
	if r.i != len(r.b) {
		return fmt.Errorf("audience: %d trailing bytes", len(r.b)-r.i)
	}
	return nil
}

func (r *reader) uint() (uint64, error) {
	v, err := r.int()
	return uint64(v), err
}

// arrayLen reads an array header; nil is empty.
func (r *reader) arrayLen() (int, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), nil
	case c == 0xc0:
		return 0, nil
	case c == 0xdc || c == 0xdd:
		n, err := r.uintN(2 << (c - 0xdc))
		return int(n), err
	}
	return 0, fmt.Errorf("msgpack: invalid code=%x decoding array length", c)
}

func (r *reader) breakdowns(bd *[audience.NumDimensions]audience.Breakdown, want DimMask) error {
	n, err := r.arrayLen()
	if err != nil {
		return err
	}
	if n > len(bd) {
		return fmt.Errorf("audience: %d breakdowns", n)
	}
	for d := range n {
		if want&AudienceMaskOf(audience.Dimension(d)) == 0 {
			if err := r.skip(); err != nil {
				return err
			}
			continue
		}
		if err := r.breakdown(&bd[d]); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) breakdown(b *audience.Breakdown) error {
	n, _, zero, err := r.structLen(-1)
	if err != nil || zero {
		return err
	}
	for range n {
		k, err := r.str()
		if err != nil {
			return err
		}
		switch k {
		case "c":
			err = r.counts(b)
		case "o":
			b.Other, err = r.uint()
		default:
			err = r.skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) counts(b *audience.Breakdown) error {
	n, _, zero, err := r.structLen(-1)
	if err != nil || zero {
		return err
	}
	if n > maxMapLen || n > len(r.b)-r.i {
		return fmt.Errorf("%d values", n)
	}
	b.Counts = make(map[string]uint64, n)
	for range n {
		v, err := r.bytes()
		if err != nil {
			return err
		}
		c, err := r.uint()
		if err != nil {
			return err
		}
		b.Counts[string(v)] = c
	}
	return nil
}
