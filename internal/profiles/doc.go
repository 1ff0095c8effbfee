// Package profiles owns the Site's registered users: the profile record in the
// adsyn_profiles bucket, its photo and resume in adsyn_media, each user's data
// key in adsyn_user_keys, the per-field visibility settings and the consent
// history, and the /v1/users and /v1/profiles API.
//
// Crypto-shredding (P8). Each user gets a random AES-256 data key, wrapped by
// the keyring (profile.keys) and written once to adsyn_user_keys, a bucket
// of one revision. Everything personal (name, city, every profile field, the
// linked visitor, media metadata; apart from them the contact fields; the
// photo and resume bytes) is sealed with AES-256-GCM under that key, bound to
// the user id, before it reaches NATS. A record keeps in clear only its id,
// the consent history (proof of consent, Art. 7(1) GDPR, and what P4/P5 are
// checked against, pseudonymous without the rest) and its two dates.
// Erasure deletes the media (their chunks overwritten), the linked visitor
// record (through Visitors, which segments' store provides: profiles never
// open adsyn_segments) and the profile (a purge: syndication sees it and tells partners),
// then destroys the key: a secure delete (jetstream.Stream.SecureDeleteMsg,
// which overwrites the message in the block file) of every message of the
// key's subject, then a purge. adsyn_user_keys is provisioned as a stream by
// hand because CreateKeyValue denies message deletes for good. This was
// chosen over purging revisions plus compaction: a purge only marks
// messages deleted, KV buckets refuse secure deletes, and compaction timing
// is the server's; with the key gone, every copy (old revisions, block files,
// backups) is unreadable even to whoever holds profile.keys.
//
// Records written before data keys (schema 1: name and city in clear,
// contact fields sealed by the keyring) still read, and are rewritten under
// a data key at their next write; their media likewise at the next upload.
// Revisions a schema 1 record had before its migration stay in the bucket's
// files until the filestore compacts them (KV streams deny secure delete).
//
// Contact fields and the resume leave the store only to the data subject
// (P2): Reader.Decode, the public views and the search index never open
// them. Photos lose their metadata at upload (Strip). A browser is linked to
// an account only with proof from that browser (P4, link.go). A request of
// the signed-in user that carries Global Privacy Control (Sec-GPC: 1)
// withdraws syndication and personalized ads, recorded with source "gpc";
// it is not an erasure, and the same browser cannot grant them back (409
// gpc_conflict). gpc.go decides it, outside the auth guard; a PATCH
// carries the withdrawal in its own write.
//
// Others read profiles through Reader: Latest (the newest profile), Follow
// and LatestChange (the change feed, with versions: syndication) and
// EachUser. Nobody else opens adsyn_profiles.
package profiles
