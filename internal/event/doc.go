// Package event defines the event every edge captures and every consumer reads:
// its msgpack wire form, its subject in ADSYN_EVENTS and its partition.
//
// Encoding is hand-written (AppendMsgpack) so the edge publishes without
// allocating; decoding is hand-written too for the forms the encoder writes
// (decode.go) and goes through msgpack/v5 for any other, whose struct tags
// here are the wire contract. A message carries one event or a batch of events of one kind
// and partition, concatenated, with the count in the Adsyn-Events header.
package event
