package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
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
