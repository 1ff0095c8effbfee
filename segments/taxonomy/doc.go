// Package taxonomy is the pure core of interest segments: what a segment is
// (File, Segment, Category, Rules), the validated, immutable Taxonomy that
// refuses a segment in a sensitive category or whose id, name or rules hold
// a sensitive term (P1), Live (the taxonomy in force, read without locks)
// and Match, (taxonomy, event) → contributions, which gives nothing for an
// event whose query, URL or page category is sensitive.
//
// It imports no network package (internal/purity checks it), so it can be
// tested and reused without NATS or fasthttp. The sensitive check is
// internal/guard's; the segments package builds and stores records with it.
package taxonomy
