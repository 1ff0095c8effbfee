package bus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Resources says how to provision adsyn's streams and buckets.
type Resources struct {
	Replicas       int           // 1 on one machine, 3 on a cluster
	Retention      time.Duration // ADSYN_EVENTS max age (P6)
	SegmentsTTL    time.Duration // a visitor record's inactivity expiry
	AuditRetention time.Duration // 0: forever
	StatsRetention time.Duration // how long an hour's counters stay after their last update; 0: forever
	DedupeWindow   time.Duration // ADSYN_EVENTS Nats-Msg-Id window
	EventsMaxBytes int64         // 0: unlimited
}

// DefaultResources returns the defaults of a single machine.
func DefaultResources() Resources {
	return Resources{
		Replicas:    1,
		Retention:   720 * time.Hour,
		SegmentsTTL: 90 * 24 * time.Hour,
		// About 13 months: this month against the same month a year ago.
		StatsRetention: 400 * 24 * time.Hour,
		DedupeWindow:   2 * time.Minute,
	}
}

// Provision creates or updates every stream, bucket and object store. It is
// idempotent: every process runs it at start.
func Provision(ctx context.Context, js jetstream.JetStream, r Resources) error {
	if r.Replicas < 1 {
		r.Replicas = 1
	}
	streams := []jetstream.StreamConfig{{
		Name:        StreamEvents,
		Description: "every captured event (adsyn.ev.<kind>.<partition>)",
		Subjects:    []string{SubjectEvents},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      r.Retention,
		MaxBytes:    nonZero(r.EventsMaxBytes, -1),
		Duplicates:  r.DedupeWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    r.Replicas,
		Discard:     jetstream.DiscardOld,
	}, {
		Name:        StreamAudit,
		Description: "staff reads of personal data and access denials (P7); append-only",
		Subjects:    []string{SubjectAudit},
		MaxAge:      r.AuditRetention,
		Storage:     jetstream.FileStorage,
		Replicas:    r.Replicas,
		DenyDelete:  true,
		DenyPurge:   true,
	}, {
		Name:        StreamDeadMail,
		Description: "syndication deliveries that exhausted their retries, replayable",
		Subjects:    []string{SubjectDeadMail},
		Storage:     jetstream.FileStorage,
		Replicas:    r.Replicas,
	}}
	for _, cfg := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("bus: provision stream %s: %w", cfg.Name, err)
		}
	}
	buckets := []jetstream.KeyValueConfig{
		{Bucket: BucketSegments, Description: "visitor segment records", TTL: r.SegmentsTTL, LimitMarkerTTL: time.Hour},
		{Bucket: BucketCampaigns, Description: "advertisers, campaigns, creatives, sites", History: 8},
		{Bucket: BucketProfiles, Description: "registered users", History: 16},
		// One revision: a record holds a webhook secret, sealed, and no old one may linger.
		{Bucket: BucketPartners, Description: "syndication partners"},
		// Each delivery's answer is written with the state it leaves: the
		// revisions kept are the delivery log.
		{Bucket: BucketSyndState, Description: "last delivery per partner and user; its history is the delivery log", History: jetstream.KeyValueMaxHistory},
		{Bucket: BucketStats, Description: "hourly counters", TTL: r.StatsRetention},
		{Bucket: BucketKeys, Description: "API keys by SHA-256 hash"},
		{Bucket: BucketSecrets, Description: "shared signing keys, sealed"},
		{Bucket: BucketConfig, Description: "operator settings every process follows", History: 16},
	}
	for _, cfg := range buckets {
		cfg.Storage = jetstream.FileStorage
		cfg.Replicas = r.Replicas
		var err error
		switch {
		case leaderReads[cfg.Bucket]:
			_, err = js.CreateOrUpdateStream(ctx, leaderReadStream(cfg))
		case cfg.Bucket == BucketSegments:
			_, err = js.CreateOrUpdateStream(ctx, segmentsStream(cfg))
		default:
			_, err = js.CreateOrUpdateKeyValue(ctx, cfg)
		}
		if err != nil {
			return fmt.Errorf("bus: provision bucket %s: %w", cfg.Bucket, err)
		}
	}
	if _, err := js.CreateOrUpdateStream(ctx, userKeysStream(r.Replicas)); err != nil {
		return fmt.Errorf("bus: provision bucket %s: %w", BucketUserKeys, err)
	}
	if _, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      ObjectMedia,
		Description: "profile photos and resumes",
		Storage:     jetstream.FileStorage,
		Replicas:    r.Replicas,
	}); err != nil {
		return fmt.Errorf("bus: provision object store %s: %w", ObjectMedia, err)
	}
	return nil
}

// leaderReads are the buckets whose reads must see the latest write: the
// catalog, where the API checks a creative's campaign right after another
// request created it, the partners, and the shared secrets (a process that
// lost the race to create one reads the winner's). A direct get may be answered by a
// replica that does not have the write yet; these buckets are read seldom,
// so their reads go to the stream leader. Visitor records and counters stay
// on direct gets: their writers compare-and-set, and their readers are many.
var leaderReads = map[string]bool{BucketCampaigns: true, BucketPartners: true, BucketSecrets: true}

// leaderReadStream is the stream nats.go makes for a bucket (kv.go,
// prepareKeyValueConfig), without direct gets: a KeyValue bound to it reads
// through the leader.
func leaderReadStream(cfg jetstream.KeyValueConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + cfg.Bucket,
		Description:       cfg.Description,
		Subjects:          []string{"$KV." + cfg.Bucket + ".>"},
		MaxMsgsPerSubject: int64(max(cfg.History, 1)),
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		MaxAge:            cfg.TTL,
		Duplicates:        2 * time.Minute,
		Discard:           jetstream.DiscardNew,
		AllowRollup:       true,
		DenyDelete:        true,
		AllowDirect:       false,
		Storage:           cfg.Storage,
		Replicas:          cfg.Replicas,
	}
}

// SegmentsDedupeWindow is the Nats-Msg-Id window of adsyn_segments. Every
// record write carries an id, so the server holds one entry (about 110
// bytes) per write for the window: 30 seconds, not the 2 minutes of a bucket
// made by CreateKeyValue. The segment builder sends a write again under its
// id only within this window (segments/redelivery.go).
const SegmentsDedupeWindow = 30 * time.Second

// segmentsStream is the stream nats.go makes for the segments bucket, with
// direct gets, per-message TTLs and limit markers, and a shorter dedupe window.
func segmentsStream(cfg jetstream.KeyValueConfig) jetstream.StreamConfig {
	s := leaderReadStream(cfg)
	s.AllowDirect = true
	s.AllowMsgTTL, s.SubjectDeleteMarkerTTL = cfg.LimitMarkerTTL > 0, cfg.LimitMarkerTTL
	s.Duplicates = SegmentsDedupeWindow
	if cfg.TTL > 0 {
		s.Duplicates = min(s.Duplicates, cfg.TTL)
	}
	return s
}

// userKeysStream is the stream of the adsyn_user_keys bucket, made by hand
// rather than by CreateKeyValue, which denies message deletes for good:
// erasure overwrites a user's data key with a secure delete. One revision, so
// a key never has an older copy in the store.
func userKeysStream(replicas int) jetstream.StreamConfig {
	s := leaderReadStream(jetstream.KeyValueConfig{Bucket: BucketUserKeys, Storage: jetstream.FileStorage, Replicas: replicas,
		Description: "users' data keys, wrapped by the keyring; destroyed at erasure"})
	s.DenyDelete = false
	s.AllowDirect = true // read per profile: direct gets; a key just made is used, not read back
	return s
}

// ProvisionRetry runs Provision until it succeeds or ctx ends, waiting
// longer after each failure (up to half a minute) and logging each one: a
// process started while its cluster recovers waits for it instead of exiting.
func ProvisionRetry(ctx context.Context, js jetstream.JetStream, r Resources, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		// A bound per attempt: a request lost in a failover must not hold the rest.
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := Provision(actx, js, r)
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info("nats: provisioned", "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (gave up after %d attempts: %w)", err, attempt, ctx.Err())
		}
		log.Warn("nats: provisioning failed; retrying", "attempt", attempt, "retry_in", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up after %d attempts: %w)", err, attempt, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func nonZero(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}
