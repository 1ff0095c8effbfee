// Package event defines the event every edge captures and every consumer reads:
// its msgpack wire form, its subject in ADSYN_EVENTS and its partition.
//
// Encoding is hand-written (AppendMsgpack) so the edge publishes without
// allocating; decoding goes through msgpack/v5, whose struct tags here are the
// wire contract. A message carries one event or a batch of events of one kind
// and partition, concatenated, with the count in the Adsyn-Events header.
package event
