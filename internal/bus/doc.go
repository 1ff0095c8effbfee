// Package bus owns adsyn's connection to NATS JetStream: the embedded server
// for one machine, the connection to a cluster beyond it, the idempotent
// provisioning of every stream, bucket and object store, and the batching
// event publisher the edge uses.
//
// Every NATS name is declared here; other packages use these constants.
package bus
