// Package metrics is a small Prometheus text-format registry: counters,
// gauges read at scrape time and fixed-bucket histograms. Series are created
// once at wiring time; the hot path only does atomic adds.
//
// Label values must never carry personal data (P2): ids of campaigns, sites
// and partners at most, never a visitor, user, email, phone or IP.
package metrics
