package guard

import (
	"bytes"
	"math"
	"unicode/utf8"
)

// Punycode (RFC 3492) as IDNA writes host labels: "xn--b1am9b" is "вич".
// A host label spelling a sensitive word is no disguise, so fold decodes
// such labels before it folds words.

const (
	pcBase        = 36
	pcTMin        = 1
	pcTMax        = 26
	pcSkew        = 38
	pcDamp        = 700
	pcInitialBias = 72
	pcInitialN    = 128
	maxLabel      = 63 // bytes in a DNS label; longer "labels" are left alone
)

// decodePunycode appends the code points of s, a label's punycode without
// its "xn--", to dst (RFC 3492 section 6.2); ok is false for input that is
// not punycode. The output has at most len(s) code points, so a dst with
// that much room is not grown.
func decodePunycode(dst []rune, s []byte) (_ []rune, ok bool) {
	start := len(dst)
	in := 0
	if d := lastIndexByte(s, '-'); d >= 0 {
		for _, c := range s[:d] {
			if c >= utf8.RuneSelf {
				return dst[:start], false
			}
			dst = append(dst, rune(c))
		}
		in = d + 1
	}
	n, i, bias := pcInitialN, 0, pcInitialBias
	for in < len(s) {
		oldi, w := i, 1
		for k := pcBase; ; k += pcBase {
			if in >= len(s) {
				return dst[:start], false
			}
			digit, ok := pcDigit(s[in])
			in++
			if !ok || digit > (math.MaxInt32-i)/w {
				return dst[:start], false
			}
			i += digit * w
			t := min(max(k-bias, pcTMin), pcTMax)
			if digit < t {
				break
			}
			if w > math.MaxInt32/(pcBase-t) {
				return dst[:start], false
			}
			w *= pcBase - t
		}
		out := len(dst) - start + 1
		bias = pcAdapt(i-oldi, out, oldi == 0)
		if i/out > math.MaxInt32-n {
			return dst[:start], false
		}
		n += i / out
		i %= out
		if n > utf8.MaxRune || 0xD800 <= n && n <= 0xDFFF || n < pcInitialN {
			return dst[:start], false
		}
		dst = append(dst, 0)
		copy(dst[start+i+1:], dst[start+i:])
		dst[start+i] = rune(n)
		i++
	}
	return dst, true
}

func pcDigit(c byte) (int, bool) {
	switch {
	case '0' <= c && c <= '9':
		return int(c-'0') + 26, true
	case 'a' <= c && c <= 'z':
		return int(c - 'a'), true
	case 'A' <= c && c <= 'Z':
		return int(c - 'A'), true
	}
	return 0, false
}

func pcAdapt(delta, points int, first bool) int {
	if first {
		delta /= pcDamp
	} else {
		delta /= 2
	}
	delta += delta / points
	k := 0
	for delta > ((pcBase-pcTMin)*pcTMax)/2 {
		delta /= pcBase - pcTMin
		k += pcBase
	}
	return k + (pcBase-pcTMin+1)*delta/(delta+pcSkew)
}

func lastIndexByte(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// hasACE reports whether b holds "xn--" in any case.
func hasACE(b []byte) bool {
	for off := 0; ; {
		i := bytes.Index(b[off:], dashes)
		if i < 0 {
			return false
		}
		i += off
		if i >= 2 && b[i-1]|0x20 == 'n' && b[i-2]|0x20 == 'x' {
			return true
		}
		off = i + 1
	}
}

var dashes = []byte("--")

func isLabelByte(c byte) bool {
	return 'a' <= c|0x20 && c|0x20 <= 'z' || '0' <= c && c <= '9' || c == '-'
}

// appendDecodedLabels appends s to dst with every "xn--" label that decodes
// written as its code points; runes is scratch of room maxLabel.
func appendDecodedLabels(dst, s []byte, runes *[maxLabel]rune) []byte {
	for i := 0; i < len(s); {
		if i+4 <= len(s) && s[i]|0x20 == 'x' && s[i+1]|0x20 == 'n' && s[i+2] == '-' && s[i+3] == '-' && (i == 0 || !isLabelByte(s[i-1])) {
			j := i + 4
			for j < len(s) && isLabelByte(s[j]) {
				j++
			}
			if n := j - i - 4; n > 0 && n <= maxLabel {
				if rs, ok := decodePunycode(runes[:0], s[i+4:j]); ok {
					for _, r := range rs {
						dst = utf8.AppendRune(dst, r)
					}
					i = j
					continue
				}
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		dst = append(dst, s[i])
		i++
	}
	return dst
}
