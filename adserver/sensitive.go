package adserver

import (
	"strings"

	"github.com/adsyn/adsyn/internal/guard"
)

// sensitive asks the guard, the one place P1 is decided, whether a
// targeted segment or category names a sensitive category. Ids join words
// with - _ . / :, so they are asked about as words too.
func sensitive(v string) (string, bool) {
	if cat, ok := guard.Sensitive(v); ok {
		return cat, true
	}
	words := strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.', '/', ':':
			return ' '
		}
		return r
	}, v)
	return guard.Sensitive(words)
}
