// Package keyring holds adsyn's master keys: AES-256-GCM keys by id, read from
// a file in the data directory (or --profile-keys), the last one current.
//
// It seals what must not be readable at rest: the per-user data keys of
// profiles, the click-token key, the partners' webhook secrets. A rotation
// appends a key; data sealed under an older id still opens.
package keyring
