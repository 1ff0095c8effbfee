// Package demo holds the sample data `adsyn serve --demo` loads that no
// other package owns: the demo users and the publisher page's pixel. The
// sample campaigns and partner stay with adserver and syndication, which own
// them. Everything here is loaded once and is safe to load again.
package demo
