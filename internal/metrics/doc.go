// Package metrics is adsyn's thin layer over the Prometheus client
// (github.com/prometheus/client_golang): counters, gauges read at scrape time
// and histograms, under adsyn's own names and bucket sets. Series are created
// once at wiring time; the hot path only does atomic adds.
//
// Counter names end in _total and gauge names do not; registration panics
// otherwise, so a misnamed series never reaches a scrape. Label values must
// never carry personal data (P2): ids of campaigns, sites and partners at
// most, never a visitor, user, email, phone or IP.
package metrics
