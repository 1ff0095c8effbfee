package bus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/keyring"
)

// TestLostCompareAndSetIsKnownOnEveryStream: a write with a stale expected
// sequence is refused with 10071 by one server and 10164 by a replicated
// stream; both, through kv.Update and through a raw publish, read as a lost
// compare-and-set. Concurrent click-token key rotations on the replicated
// bucket, which lose to each other, all end with their key in the set.
func TestLostCompareAndSetIsKnownOnEveryStream(t *testing.T) {
	single := bustest.Start(t)
	cluster := bustest.StartCluster(t, 3).Connect(t)
	for name, c := range map[string]*bus.Conn{"one server": single, "replicas 3": cluster} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			kv, err := c.JS.KeyValue(ctx, bus.BucketSecrets)
			if err != nil {
				t.Fatal(err)
			}
			rev, err := kv.Put(ctx, "cas_probe", []byte("1"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Put(ctx, "cas_probe", []byte("2")); err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Update(ctx, "cas_probe", []byte("3"), rev); !bus.IsWrongLastSequence(err) {
				t.Errorf("kv.Update on a stale revision: %v, not known as a lost compare-and-set", err)
			}
			m := nats.NewMsg("$KV." + bus.BucketSecrets + ".cas_probe")
			m.Data = []byte("4")
			_, err = c.JS.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(rev))
			if !bus.IsWrongLastSequence(err) {
				t.Errorf("publish on a stale sequence: %v, not known as a lost compare-and-set", err)
			}
			if bus.IsWrongLastSequence(nil) || bus.IsWrongLastSequence(context.Canceled) {
				t.Error("other errors read as a lost compare-and-set")
			}
		})
	}

	ring, err := keyring.Parse(keyring.NewKeyLine(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, _, err := bus.LoadTokenKeys(ctx, cluster.JS, ring); err != nil {
		t.Fatal(err)
	}
	const rotations = 4
	var wg sync.WaitGroup
	errs := make(chan error, rotations)
	for range rotations {
		wg.Go(func() {
			_, err := bus.RotateTokenKeys(ctx, cluster.JS, ring, time.Minute, 24*time.Hour)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a concurrent rotation failed: %v", err)
		}
	}
	s, _, err := bus.LoadTokenKeys(ctx, cluster.JS, ring)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Keys) != 1+rotations {
		t.Errorf("%d keys after %d rotations of one, want %d", len(s.Keys), rotations, 1+rotations)
	}
}
