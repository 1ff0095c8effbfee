package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestProvisionIsIdempotent(t *testing.T) {
	c := bustest.Start(t) // provisions once
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Provision(ctx, c.JS, bus.DefaultResources()); err != nil {
		t.Fatalf("second provision: %v", err)
	}
	for _, name := range []string{bus.StreamEvents, bus.StreamAudit, bus.StreamDeadMail} {
		if _, err := c.JS.Stream(ctx, name); err != nil {
			t.Errorf("stream %s: %v", name, err)
		}
	}
	for _, name := range []string{bus.BucketSegments, bus.BucketCampaigns, bus.BucketProfiles,
		bus.BucketPartners, bus.BucketSyndState, bus.BucketStats, bus.BucketKeys, bus.BucketSecrets, bus.BucketConfig, bus.BucketUserKeys} {
		if _, err := c.JS.KeyValue(ctx, name); err != nil {
			t.Errorf("bucket %s: %v", name, err)
		}
	}
	if _, err := c.JS.ObjectStore(ctx, bus.ObjectMedia); err != nil {
		t.Errorf("object store: %v", err)
	}
	// Erasure overwrites a data key in place: its bucket keeps one revision
	// and allows message deletes, which a KV bucket made the usual way denies.
	st, err := c.JS.Stream(ctx, bus.StreamUserKeys)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; cfg.DenyDelete || cfg.MaxMsgsPerSubject != 1 {
		t.Errorf("%s: deny delete %v, history %d; want false, 1", bus.StreamUserKeys, cfg.DenyDelete, cfg.MaxMsgsPerSubject)
	}
}

// The catalog and the partners are read through the stream leader, so a
// read sees the write before it on a cluster; a bucket made earlier with
// direct gets is switched over, and keeps its values and its history.
func TestLeaderReadBuckets(t *testing.T) {
	c := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range []string{bus.BucketCampaigns, bus.BucketPartners} {
		// As an earlier version provisioned it: nats.go's defaults, direct gets on.
		if err := c.JS.DeleteKeyValue(ctx, name); err != nil {
			t.Fatal(err)
		}
		kv, err := c.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, History: 8})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "k", []byte("v1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := bus.Provision(ctx, c.JS, bus.DefaultResources()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bus.BucketCampaigns, bus.BucketPartners} {
		st, err := c.JS.Stream(ctx, "KV_"+name)
		if err != nil {
			t.Fatal(err)
		}
		if st.CachedInfo().Config.AllowDirect {
			t.Errorf("%s: direct gets still on", name)
		}
		kv, err := c.JS.KeyValue(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "k", []byte("v2")); err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(ctx, "k")
		if err != nil || string(e.Value()) != "v2" {
			t.Fatalf("%s: get after put: %v %v", name, e, err)
		}
		want := 2 // the catalog keeps 8 revisions
		if name == bus.BucketPartners {
			want = 1 // a partner's record holds a sealed secret: one revision
		}
		if h, err := kv.History(ctx, "k"); err != nil || len(h) != want {
			t.Errorf("%s: history %d entries (%v), want %d", name, len(h), err, want)
		}
	}
	// The segments bucket keeps direct gets: its readers are many.
	st, err := c.JS.Stream(ctx, "KV_"+bus.BucketSegments)
	if err != nil {
		t.Fatal(err)
	}
	if !st.CachedInfo().Config.AllowDirect {
		t.Errorf("%s: direct gets off", bus.BucketSegments)
	}
}

// Retention settings reach an existing bucket: statistics expire after
// StatsRetention, or never with 0.
func TestProvisionUpdatesStatsRetention(t *testing.T) {
	c := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ttl := func() time.Duration {
		t.Helper()
		kv, err := c.JS.KeyValue(ctx, bus.BucketStats)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.TTL()
	}
	if got, want := ttl(), bus.DefaultResources().StatsRetention; got != want || want == 0 {
		t.Errorf("stats TTL %s, want %s", got, want)
	}
	for _, want := range []time.Duration{48 * time.Hour, 0} {
		r := bus.DefaultResources()
		r.StatsRetention = want
		if err := bus.Provision(ctx, c.JS, r); err != nil {
			t.Fatal(err)
		}
		if got := ttl(); got != want {
			t.Errorf("stats TTL %s after provisioning %s", got, want)
		}
	}
}

// The segments bucket's dedupe window is SegmentsDedupeWindow, also on a
// bucket that an older version made with CreateKeyValue (2 minutes), and it
// keeps what CreateKeyValue gave it: direct gets, per-message TTLs, limit
// markers, the record TTL.
func TestSegmentsBucketStream(t *testing.T) {
	c := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := bus.DefaultResources()
	if err := c.JS.DeleteStream(ctx, "KV_"+bus.BucketSegments); err != nil {
		t.Fatal(err)
	}
	old, err := c.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bus.BucketSegments, TTL: r.SegmentsTTL, LimitMarkerTTL: time.Hour, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Put(ctx, "v1", []byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := bus.Provision(ctx, c.JS, r); err != nil {
		t.Fatalf("provision over a bucket made by CreateKeyValue: %v", err)
	}
	st, err := c.JS.Stream(ctx, "KV_"+bus.BucketSegments)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if cfg.Duplicates != 30*time.Second || !cfg.AllowDirect || !cfg.AllowMsgTTL || cfg.SubjectDeleteMarkerTTL != time.Hour ||
		cfg.MaxAge != r.SegmentsTTL || cfg.MaxMsgsPerSubject != 1 || !cfg.DenyDelete || cfg.Discard != jetstream.DiscardNew {
		t.Errorf("segments stream: %+v", cfg)
	}
	kv, err := c.JS.KeyValue(ctx, bus.BucketSegments)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "v1"); err != nil || string(e.Value()) != "before" {
		t.Errorf("a record written before: %v %v", e, err)
	}
	if _, err := kv.Create(ctx, "v2", []byte("x"), jetstream.KeyTTL(time.Hour)); err != nil {
		t.Errorf("a record with its own TTL: %v", err)
	}
}
