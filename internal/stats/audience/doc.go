// Package audience is the pure core of publishers' site analytics: what a
// pageview, search or custom event says about a site's audience, bounded so
// that a site-hour costs the same whatever its traffic.
//
//   - Values reads an event's breakdown values: page (the path the privacy
//     choke point left, without query), referrer host (other sites only),
//     utm_source and utm_campaign, language, device class, browser family,
//     OS, country and the custom event's name.
//   - Breakdown counts values exactly, up to a stated number of distinct
//     values per dimension and hour (Limits); later new values count in
//     Other. Breakdowns merge into days and any range.
//   - Visitors is a HyperLogLog sketch (precision 14: a standard error of
//     0.81%, within 2% at a million visitors) of the visitor ids of consented
//     events: identifiable visitors, not people.
//
// It imports no network package (internal/purity checks it).
package audience
