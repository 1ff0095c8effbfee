// Package bench is adsyn's load generator and its benchmark scenarios.
//
// Every scenario measures adsyn and a ceiling in the same run, in rounds that
// alternate the two so that noise on a shared machine hits both, and reports
// the median ratio. A ceiling does the same work minus adsyn, with the same
// parallelism and success criterion: for the HTTP scenarios (pixel, ad) a bare
// fasthttp server answering the edge's own bytes; for segments bare
// compare-and-set writes; for stats a parallel read of the stream; for
// syndication signed POSTs answered 2xx. HTTP latency comes from an open-loop
// phase at a fixed rate (by default half the throughput of the slower side),
// each request timed from its send, or from its intended start when every
// worker was still waiting on answers (corrected for coordinated omission).
//
// Scenarios reach adsyn through the packages' exported APIs and NATS only:
// production packages keep no hooks for them.
package bench
