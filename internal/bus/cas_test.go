package bus_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
)

func casBucket(t *testing.T) (context.Context, jetstream.KeyValue) {
	t.Helper()
	c := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	kv, err := c.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "cas_test"})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, kv
}

func increment(cur jetstream.KeyValueEntry) ([]byte, error) {
	n, err := strconv.Atoi(string(cur.Value()))
	if err != nil {
		return nil, err
	}
	return []byte(strconv.Itoa(n + 1)), nil
}

// TestUpdateLosesNoWrite has writers race on one counter: every increment
// Update reports done is in the final value, and no two got one revision.
func TestUpdateLosesNoWrite(t *testing.T) {
	ctx, kv := casBucket(t)
	if _, err := kv.Put(ctx, "n", []byte("0")); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 25
	var (
		mu        sync.Mutex
		done      int
		conflicts int
		revs      = map[uint64]bool{}
		wg        sync.WaitGroup
	)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				rev, err := bus.Update(ctx, kv, "n", increment)
				mu.Lock()
				switch {
				case err == nil:
					done++
					if revs[rev] {
						t.Errorf("revision %d reported twice", rev)
					}
					revs[rev] = true
				case errors.Is(err, bus.ErrConflict):
					conflicts++
				default:
					t.Errorf("update: %v", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	e, err := kv.Get(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(e.Value()); got != strconv.Itoa(done) {
		t.Errorf("counter %s after %d reported increments (%d conflicts)", got, done, conflicts)
	}
	if done+conflicts != writers*each || done == 0 {
		t.Errorf("%d done, %d conflicts of %d", done, conflicts, writers*each)
	}
}

func TestUpdateAbsentAndRefused(t *testing.T) {
	ctx, kv := casBucket(t)
	if _, err := bus.Update(ctx, kv, "absent", increment); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("absent key: %v, want ErrKeyNotFound", err)
	}
	if _, err := kv.Put(ctx, "gone", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Update(ctx, kv, "gone", increment); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("deleted key: %v, want ErrKeyNotFound", err)
	}
	rev, err := kv.Put(ctx, "bad", []byte("not a number"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Update(ctx, kv, "bad", increment); err == nil || errors.Is(err, bus.ErrConflict) {
		t.Errorf("modify failing: %v, want its error", err)
	}
	if e, err := kv.Get(ctx, "bad"); err != nil || e.Revision() != rev {
		t.Errorf("a refused update wrote: %v", err)
	}
	if rev, err := bus.Update(ctx, kv, "absent", func(jetstream.KeyValueEntry) ([]byte, error) { return nil, nil }); err == nil || rev != 0 {
		t.Errorf("absent key written: rev %d", rev)
	}
}
