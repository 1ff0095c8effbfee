package adserver

import "github.com/adsyn/adsyn/internal/guard"

// sensitive asks the guard, the one place P1 is decided, whether a
// targeted segment or category names a sensitive category. The guard reads
// the words of ids joined with - _ . / : and glued ones ("hivtest").
func sensitive(v string) (string, bool) { return guard.Sensitive(v) }
