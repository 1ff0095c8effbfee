// Package stats counts every impression, viewable impression, click,
// conversion and call exactly once into hourly records per campaign and per
// site, and serves them: the statistics API, the call tracking webhook and
// the dashboard.
//
// The Aggregator reads ADSYN_EVENTS through one durable consumer per
// partition (adsyn_stats_<p>, priority group "stats", pinned client), so
// each partition is applied by one aggregator at a time, in stream order.
// Records live in the adsyn_stats bucket under camp.<id>.<YYYYMMDDHH> and
// site.<id>.<YYYYMMDDHH> (UTC, the hour of the event's own timestamp) with
// breakdowns by creative, site or campaign, slot, language, country and
// device type, and with the last stream sequence applied per partition.
// Writes are compare-and-set; a message is acknowledged only after its
// records and its partition's checkpoint (agg.<consumer>.p<N>) are written.
// Membership heartbeats (agg.<consumer>.m.<instance>) let aggregators split
// the partitions evenly.
//
// The counting itself (records, their wire form, the tally of events into
// what each record gains) is the pure core in internal/stats/tally; this
// package adds the consumers, the writes and the API around it.
//
// Spend is kept in millionths of the currency unit: an impression's own
// price (Event.Value) when it has one, else the campaign's CPM/1000.
//
// The caller's phone number of a tracked call is read only to keep its
// country and area code (Event.Area); it is never stored, logged or
// published.
package stats
