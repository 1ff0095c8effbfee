package api

import (
	"fmt"
	"net/http"
	"strings"
)

// MaxPathSegment bounds each segment of an API path. Ids become NATS
// subjects and keys; a longer one is refused here, before it can reach NATS.
const MaxPathSegment = 128

// CheckPaths answers 400 for an API path (under /v1/) holding a segment that
// could not be an id: longer than MaxPathSegment bytes, or with a byte other
// than a letter, a digit, '_', '-', '.' or '~'. So no request can put a
// wildcard ('*', '>'), a space, a control byte or an oversized token into a
// subject, whatever the route does next. Handlers still check their ids'
// own rules.
func CheckPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/"); ok {
			for i, seg := range strings.Split(rest, "/") {
				if msg := badSegment(seg); msg != "" {
					WriteError(w, http.StatusBadRequest, "invalid_path", fmt.Sprintf("path segment %d %s", i+2, msg))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func badSegment(s string) string {
	if len(s) > MaxPathSegment {
		return fmt.Sprintf("is %d bytes long; an id has at most %d", len(s), MaxPathSegment)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == '~') {
			return fmt.Sprintf("holds %q; ids are letters, digits, '_', '-', '.' and '~'", c)
		}
	}
	return ""
}
