// Package segments builds interest profiles of visitor cookies from their
// own events and browser language, and never from a sensitive category (P1).
// It holds the builder that turns ADSYN_EVENTS into records
// in the adsyn_segments bucket, the Store the ad server reads them through,
// the edge's /optout and the admin API.
//
// The pieces, from pure to I/O:
//
//   - segments/taxonomy is the pure core (no network import; see
//     internal/purity): the taxonomy, an immutable, validated set of segments
//     that refuses a sensitive one, Live, the taxonomy in force, and Match,
//     (taxonomy, event) → contributions. The sensitive check itself is
//     internal/guard's.
//   - Policy.apply folds contributions into a Record (decay, languages,
//     frequency caps, bounds); RecordAllowed checks a record against P1.
//   - Builder (builder.go) consumes the partitions it owns; a worker per
//     partition (worker.go) coalesces per visitor, writes (recordwrite.go)
//     with compare-and-set on the revision and acknowledges after the write;
//     the server's confirmation of a batch's acknowledgements is awaited
//     while the next batch is written (redelivery.go says why that is safe).
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
