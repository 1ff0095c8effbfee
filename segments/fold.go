package segments

import (
	"bytes"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Text is matched as a sequence of folded words: percent-escapes decoded
// (twice, for double-encoded URLs), letters and digits lower-cased with ё read
// as е and combining marks dropped, every other run of characters one space.
// So "Депрессия+лечение", "ДЕПРЕССИЯ" and "%D0%B4%D0%B5..." fold alike, and
// word boundaries are where the folded text has a space.

// folder holds the scratch buffers of one fold; it is pooled so matching
// allocates nothing.
type folder struct {
	a, b []byte
}

var folderPool = sync.Pool{New: func() any { return &folder{a: make([]byte, 0, 512), b: make([]byte, 0, 512)} }}

func acquireFolder() *folder { return folderPool.Get().(*folder) }

func releaseFolder(f *folder) {
	if cap(f.a) > 64<<10 || cap(f.b) > 64<<10 {
		return // let an oversized buffer go
	}
	folderPool.Put(f)
}

// fold returns the folded form of s; it is valid until the next use of f.
func fold[T string | []byte](f *folder, s T) []byte {
	var changed bool
	f.a, changed = unescape(f.a[:0], s)
	for range 2 {
		if !changed {
			break
		}
		f.b, changed = unescape(f.b[:0], f.a)
		f.a, f.b = f.b, f.a
	}
	f.b = foldWords(f.b[:0], f.a)
	return f.b
}

// unescape appends s to dst with %XX escapes decoded, and reports whether
// there were any.
func unescape[T string | []byte](dst []byte, s T) ([]byte, bool) {
	changed := false
	for {
		i := indexPercent(s)
		if i < 0 {
			return append(dst, s...), changed
		}
		dst = append(dst, s[:i]...)
		if i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				dst = append(dst, hi<<4|lo)
				s = s[i+3:]
				changed = true
				continue
			}
		}
		dst = append(dst, '%')
		s = s[i+1:]
	}
}

func indexPercent[T string | []byte](s T) int {
	switch v := any(s).(type) {
	case string:
		return strings.IndexByte(v, '%')
	case []byte:
		return bytes.IndexByte(v, '%')
	}
	return -1
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// foldWords appends the folded words of s to dst, separated by one space.
func foldWords(dst, s []byte) []byte {
	sep := false // a separator is pending
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			default:
				sep = true
				continue
			}
			if sep && len(dst) > 0 {
				dst = append(dst, ' ')
			}
			sep = false
			dst = append(dst, c)
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		i += size
		switch {
		case 'а' <= r && r <= 'я': // the common case first
		case 'А' <= r && r <= 'Я':
			r += 'а' - 'А'
		case r == 'ё' || r == 'Ё':
			r = 'е'
		case r == utf8.RuneError:
			sep = true
			continue
		case unicode.Is(unicode.Mn, r):
			continue // a combining mark belongs to its letter
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			sep = true
			continue
		default:
			r = unicode.ToLower(r)
		}
		if sep && len(dst) > 0 {
			dst = append(dst, ' ')
		}
		sep = false
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// nextWord returns the word of folded text at i and where the next one
// starts; ok is false at the end.
func nextWord(b []byte, i int) (start, end int, ok bool) {
	if i >= len(b) {
		return 0, 0, false
	}
	end = i
	for end < len(b) && b[end] != ' ' {
		end++
	}
	return i, end, true
}
