package segments

import "github.com/adsyn/adsyn/internal/guard"

// Sensitive reports the sensitive category of the first sensitive term in
// text: the guard's answer (internal/guard), here for callers that hold a
// segments import already. It allocates nothing.
func Sensitive(text string) (category string, ok bool) { return guard.Sensitive(text) }
