// Package profiles owns the Site's registered users: the profile record in the
// adsyn_profiles bucket, its photo and resume in adsyn_media, the per-field
// visibility settings and the consent history, and the /v1/users and
// /v1/profiles API.
//
// Email, phone and the resume are sealed with AES-256-GCM under a keyring key
// id before they reach NATS (P8) and leave the store only to the data subject
// (P2): Decode, the public views and the search index never open them. The
// bucket is the source of truth; syndication follows its change feed, so an
// erasure is a purge of the key after the media and the linked visitor record
// are gone.
//
// A request of the signed-in user that carries Global Privacy Control
// (Sec-GPC: 1) withdraws syndication and personalized ads, recorded with
// source "gpc" so partners get their deletions; it is not an erasure, and
// the same browser cannot grant them back (409 gpc_conflict).
package profiles
