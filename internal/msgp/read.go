package msgp

import (
	"encoding/binary"
	"math"
)

// The Read functions read one value of the forms the Append functions write
// from the start of b and return what follows. ok is false when b starts
// with anything else or ends too early: a caller then hands the input to
// msgpack/v5, which knows every form and says what is wrong.

// ReadMapLen reads a map header (fixmap, map 16, map 32).
func ReadMapLen(b []byte) (n int, rest []byte, ok bool) {
	if len(b) == 0 {
		return 0, b, false
	}
	switch c := b[0]; {
	case c&0xf0 == 0x80:
		return int(c & 0x0f), b[1:], true
	case c == 0xde && len(b) >= 3:
		return int(binary.BigEndian.Uint16(b[1:])), b[3:], true
	case c == 0xdf && len(b) >= 5:
		n := binary.BigEndian.Uint32(b[1:])
		return int(n), b[5:], n <= math.MaxInt32
	}
	return 0, b, false
}

// ReadArrayLen reads an array header (fixarray, array 16, array 32).
func ReadArrayLen(b []byte) (n int, rest []byte, ok bool) {
	if len(b) == 0 {
		return 0, b, false
	}
	switch c := b[0]; {
	case c&0xf0 == 0x90:
		return int(c & 0x0f), b[1:], true
	case c == 0xdc && len(b) >= 3:
		return int(binary.BigEndian.Uint16(b[1:])), b[3:], true
	case c == 0xdd && len(b) >= 5:
		n := binary.BigEndian.Uint32(b[1:])
		return int(n), b[5:], n <= math.MaxInt32
	}
	return 0, b, false
}

// ReadFixStr reads a fixstr (up to 31 bytes), the form of short map keys.
func ReadFixStr(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0]&0xe0 != 0xa0 {
		return nil, b, false
	}
	n := int(b[0] & 0x1f)
	if len(b) < 1+n {
		return nil, b, false
	}
	return b[1 : 1+n], b[1+n:], true
}

// ReadStr reads a str (fixstr, str 8, str 16, str 32); s is a view of b.
func ReadStr(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 {
		return nil, b, false
	}
	var n, head int
	switch c := b[0]; {
	case c&0xe0 == 0xa0:
		n, head = int(c&0x1f), 1
	case c == 0xd9 && len(b) >= 2:
		n, head = int(b[1]), 2
	case c == 0xda && len(b) >= 3:
		n, head = int(binary.BigEndian.Uint16(b[1:])), 3
	case c == 0xdb && len(b) >= 5:
		u := binary.BigEndian.Uint32(b[1:])
		if uint64(u) > uint64(len(b)) {
			return nil, b, false
		}
		n, head = int(u), 5
	default:
		return nil, b, false
	}
	if len(b)-head < n {
		return nil, b, false
	}
	return b[head : head+n], b[head+n:], true
}

// ReadBin8 reads a bin 8; v is a view of b.
func ReadBin8(b []byte) (v, rest []byte, ok bool) {
	if len(b) < 2 || b[0] != 0xc4 || len(b)-2 < int(b[1]) {
		return nil, b, false
	}
	n := int(b[1])
	return b[2 : 2+n], b[2+n:], true
}

// ReadUint reads an unsigned integer in one of the forms AppendUint writes.
func ReadUint(b []byte) (v uint64, rest []byte, ok bool) {
	if len(b) == 0 {
		return 0, b, false
	}
	switch c := b[0]; {
	case c <= 0x7f:
		return uint64(c), b[1:], true
	case c == 0xcc && len(b) >= 2:
		return uint64(b[1]), b[2:], true
	case c == 0xcd && len(b) >= 3:
		return uint64(binary.BigEndian.Uint16(b[1:])), b[3:], true
	case c == 0xce && len(b) >= 5:
		return uint64(binary.BigEndian.Uint32(b[1:])), b[5:], true
	case c == 0xcf && len(b) >= 9:
		return binary.BigEndian.Uint64(b[1:]), b[9:], true
	}
	return 0, b, false
}

// ReadInt reads an integer in one of the forms AppendInt writes: the
// unsigned forms up to MaxInt64, or an int 64.
func ReadInt(b []byte) (v int64, rest []byte, ok bool) {
	if len(b) >= 9 && b[0] == 0xd3 {
		return int64(binary.BigEndian.Uint64(b[1:])), b[9:], true
	}
	u, rest, ok := ReadUint(b)
	if !ok || u > math.MaxInt64 {
		return 0, b, false
	}
	return int64(u), rest, true
}

// ReadBool reads true or false.
func ReadBool(b []byte) (v bool, rest []byte, ok bool) {
	if len(b) == 0 || b[0]&0xfe != 0xc2 {
		return false, b, false
	}
	return b[0] == 0xc3, b[1:], true
}

// ReadFloat64 reads a float 64.
func ReadFloat64(b []byte) (v float64, rest []byte, ok bool) {
	if len(b) < 9 || b[0] != 0xcb {
		return 0, b, false
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b[1:])), b[9:], true
}
