// Package auth owns API keys, roles and the staff audit log.
//
// A key is shown once, at creation; only its SHA-256 hash is stored (P8), in
// the adsyn_keys bucket, which every API process watches so a revocation is
// effective everywhere within moments. Reads of personal data by staff and
// every denied access are appended to the ADSYN_AUDIT stream (P7), which
// refuses deletes and purges.
package auth
