// Package consent turns a request's privacy signals (the IAB TCF v2.2 TC
// string, gdpr scope, Sec-GPC, the opt-out cookie) into the Set of activities
// the system may perform for that request. Evaluate is the one place that
// decision is made; every flow then asks Set.Allow for its activity.
//
// Decode and Encode give the full TC string for tests, tools and the
// operator's view; Grants and Evaluate are the edge's path and allocate
// nothing. Both paths share one parser, so they cannot disagree on what a
// string says, and anything that fails to parse, or is not valid under TCF
// v2.2, grants nothing. Grants and Evaluate do not retain the bytes they are
// given, so a caller may pass a buffer it reuses (a fasthttp header value).
package consent
