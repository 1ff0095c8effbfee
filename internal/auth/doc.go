// Package auth owns API keys, roles and the staff audit log.
//
// A key is shown once, at creation; only its SHA-256 hash is stored (P8), in
// the adsyn_keys bucket, which every API process watches so a revocation is
// effective everywhere within moments. Revoking deletes the hash and keeps a
// record of the key (id, role, owner, times) under "revoked.<id>". Reads of
// personal data by staff, every denied access and every key an operator
// makes or revokes at the command line are appended to the ADSYN_AUDIT
// stream (P7), which refuses deletes and purges.
package auth
