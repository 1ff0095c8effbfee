// Package tally is the pure counting core of the statistics: hourly records
// per campaign and per site with their counters and breakdowns, their wire
// form, and the tally that sums events into what each record gains.
//
// It holds no connection and imports neither nats nor fasthttp (a test
// checks), so it is tested and reused without a network. A Tally and the
// Deltas it returns belong to one goroutine at a time.
package tally
