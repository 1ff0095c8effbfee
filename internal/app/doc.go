// Package app wires adsyn serve: it starts or joins NATS, provisions every
// resource, starts the roles this process runs (edge, segments, stats,
// syndication, api) and stops them in order: the edge stops accepting, pending
// publishes drain, then workers and NATS stop.
package app
