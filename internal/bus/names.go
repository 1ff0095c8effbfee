package bus

// Stream, bucket and object store names. They are part of the contract
// (../shared/DESIGN.md): processes of different versions share them.
const (
	StreamEvents    = "ADSYN_EVENTS"
	BucketSegments  = "adsyn_segments"
	BucketCampaigns = "adsyn_campaigns"
	BucketProfiles  = "adsyn_profiles"
	BucketPartners  = "adsyn_partners"
	BucketSyndState = "adsyn_synd_state"
	BucketStats     = "adsyn_stats"
	ObjectMedia     = "adsyn_media"

	// Beyond the design's table: API keys (hashes only, P8), the append-only
	// staff audit log (P7) and the syndication dead-letter stream.
	BucketKeys     = "adsyn_keys"
	BucketSecrets  = "adsyn_secrets" // shared signing keys, e.g. click tokens, so every edge verifies every other's
	BucketConfig   = "adsyn_config"  // operator settings every process follows, e.g. the taxonomy
	StreamAudit    = "ADSYN_AUDIT"
	StreamDeadMail = "ADSYN_SYND_DLQ"

	SubjectEvents   = "adsyn.ev.>"
	SubjectAudit    = "adsyn.audit.>"
	SubjectDeadMail = "adsyn.synd.dlq.>"
)

// Each user's data key, wrapped by the keyring (P8): one revision, destroyed
// at erasure with a secure delete, so its stream allows message deletes.
const (
	BucketUserKeys = "adsyn_user_keys"
	StreamUserKeys = "KV_" + BucketUserKeys
)
