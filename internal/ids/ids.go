package ids

// MaxLen is the longest record id; MaxVisitorLen the longest visitor id.
const (
	MaxLen        = 64
	MaxVisitorLen = 128
)

// Rule says what an id is, for error messages.
const Rule = "1-64 characters of A-Z a-z 0-9 _ -"

// Valid reports whether s may be a record id: 1 to MaxLen bytes of
// A-Z a-z 0-9 _ -. Bytes or string, it does not allocate.
func Valid[T ~string | ~[]byte](s T) bool {
	if len(s) == 0 || len(s) > MaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(alnum(c) || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidVisitor reports whether v may be a visitor id: 1 to MaxVisitorLen
// bytes of A-Z a-z 0-9 - _ = . /, not starting or ending with a dot and
// without "..", so it is one or more whole KV key tokens. The pixel's own
// ids (22 bytes of base64url) and a publisher's first-party ids both fit.
func ValidVisitor[T ~string | ~[]byte](v T) bool {
	n := len(v)
	if n == 0 || n > MaxVisitorLen || v[0] == '.' || v[n-1] == '.' {
		return false
	}
	for i := 0; i < n; i++ {
		switch c := v[i]; {
		case alnum(c), c == '-', c == '_', c == '=', c == '/':
		case c == '.':
			if v[i+1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }
