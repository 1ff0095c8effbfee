// Package bench is adsyn's load generator and its benchmark scenarios.
//
// Every HTTP scenario is measured twice in the same run, against adsyn and
// against a bare fasthttp server that only answers (the ceiling), on the
// same machine with the same client, and reports the ratio. Throughput comes
// from a saturating phase, in rounds that alternate target and ceiling so
// that noise on a shared machine hits both; latency comes from an open-loop
// phase at a fixed rate (by default half the throughput of the slower of
// the two, so both run at or below half load), alternating in rounds as
// well, each request timed from its send, or from its intended start when
// every worker was still waiting on answers (corrected for coordinated
// omission).
package bench
