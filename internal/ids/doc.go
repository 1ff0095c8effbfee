// Package ids holds the one rule for record ids (campaigns, sites,
// creatives, advertisers, users, partners, edges) and the one rule for
// visitor ids. Both become KV keys, subject tokens and URL path segments, so
// neither lets through a wildcard, a space, a control byte or an oversized
// token. It is pure.
package ids
