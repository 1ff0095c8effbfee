package phone

import "strings"

// Limits of a written number: E.164 allows at most 15 digits.
const (
	MaxLen    = 64
	MinDigits = 3
	MaxDigits = 15
)

// IsSep reports the characters a written phone number may carry between
// its digits.
func IsSep(c byte) bool {
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/'
}

// Normalize returns s as "+digits" (international) or "digits", or false
// when s is not a phone number: anything but digits, one leading '+' and
// separators (IsSep), more than MaxLen bytes, or not MinDigits to
// MaxDigits digits.
func Normalize(s string) (string, bool) {
	if len(s) > MaxLen {
		return "", false
	}
	var b strings.Builder
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+' && b.Len() == 0:
			b.WriteByte('+')
		case '0' <= c && c <= '9':
			b.WriteByte(c)
			digits++
		case IsSep(c):
		default:
			return "", false
		}
	}
	if digits < MinDigits || digits > MaxDigits {
		return "", false
	}
	return b.String(), true
}

// Key keeps the digits of s, so "+7 (495) 123-45-67" and "74951234567"
// have one key: how tracking numbers are matched to campaigns.
func Key(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}
