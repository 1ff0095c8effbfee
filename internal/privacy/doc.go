// Package privacy is the choke point every event passes before it is
// published: Scrub enforces P1 (no sensitive term), P2 (no contact data,
// no query string but an allowlist, no fragment) and P6 (truncated IP) on
// decoded text. Its recognisers also back `adsyn audit`, which checks what
// is stored for the same breaches.
//
// The package is pure: it imports neither fasthttp nor nats. A Scrubber's
// rules are immutable and it is safe for concurrent use (it remembers the
// values it kept as they were, keyed by the exact value: kept.go); a Scratch belongs to one goroutine
// at a time, and the strings Scrub writes into an event point into it until
// its next use.
package privacy
