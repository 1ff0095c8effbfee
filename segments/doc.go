// Package segments builds interest profiles of visitor cookies from their
// own events and browser language, and never from a sensitive category (P1).
// It holds the taxonomy, the builder that turns ADSYN_EVENTS into records
// in the adsyn_segments bucket, the Store the ad server reads them through,
// the edge's /optout and the admin API.
//
// The pieces, from pure to I/O:
//
//   - Guard (guard.go, data/sensitive.txt) is the one place a text is judged
//     sensitive: English and Russian terms, word-boundary aware, case, ё/е and
//     percent-escape folded, Russian inflection by stems. Sensitive is the
//     entry point the builder, taxonomy loading and campaign validation share.
//   - Taxonomy (taxonomy.go, data/taxonomy.json) is an immutable, validated
//     set of segments. New and Load refuse a segment in a sensitive category,
//     or whose id, name or rules hold a sensitive term, with a *SegmentError
//     naming it. Live holds the taxonomy in force (atomic.Pointer); readers
//     never lock.
//   - Taxonomy.Match is the pure core: (taxonomy, event) → contributions and
//     the rule that fired; an event whose query, URL or page category is
//     sensitive contributes nothing. Policy.apply folds contributions into a
//     record (decay, languages, frequency caps, bounds).
//   - Builder consumes the partitions it owns, coalesces per visitor, writes
//     with compare-and-set on the revision and acknowledges after the write.
//     Only events with consent to build a profile count (P3). No raw query,
//     URL or category is ever written: a record holds segment ids and the
//     taxonomy's own rule labels. Data minimisation: a record is made only
//     once the visitor's cookie has come back. An event whose visitor id was
//     issued on its own request (event.NewVisitor) makes no record, so a
//     one-off cookieless hit (third-party cookies blocked) leaves only its
//     event; the hits after it, which send the cookie, build the record.
//   - KVStore is the Store: a ristretto cache over the bucket, kept current
//     by a watch. The *Record it returns is shared and read-only.
//
// Lifetimes: a Builder runs once, until its context ends. A KVStore lives
// until Close. The opt-out handler copies what it needs from the
// *fasthttp.RequestCtx; nothing from it outlives the call.
package segments
