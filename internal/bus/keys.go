package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Keys calls fn with every live key of bucket matching filter (a subject
// wildcard over keys: ">" for all), until fn fails.
func Keys(ctx context.Context, js jetstream.JetStream, bucket, filter string, fn func(key string) error) error {
	return Latest(ctx, js, bucket, filter, true, func(key string, _ jetstream.Msg) error { return fn(key) })
}

// Latest calls fn with the newest revision of every live key of bucket
// matching filter, until fn fails; with headersOnly, without the values.
// It reads them through a consumer of its own, which says at its creation
// how many there are, and reads until it has them all. Not a KV watch
// (ListKeys, WatchAll), and not a fetch until nothing comes: under load a
// watch takes the first key for the last, and a fresh consumer may answer
// a fetch with nothing before it is ready, so both end early with keys
// missing.
func Latest(ctx context.Context, js jetstream.JetStream, bucket, filter string, headersOnly bool, fn func(key string, m jetstream.Msg) error) error {
	prefix, stream := "$KV."+bucket+".", KVStream(bucket)
	c, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		FilterSubjects:    []string{prefix + filter},
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       headersOnly,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: 10 * time.Second, // if the delete below is lost
	})
	if err != nil {
		return fmt.Errorf("bus: read %s: %w", bucket, err)
	}
	// Gone at once: reads may come by the thousand, and the server bounds
	// the consumers.
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = js.DeleteConsumer(dctx, stream, c.CachedInfo().Name)
		cancel()
	}()
	left := c.CachedInfo().NumPending
	// On a cluster a new consumer may have no leader for a moment: its
	// first fetches meet no responders.
	tries := 0
	leaderless := func(err error) bool {
		if errors.Is(err, nats.ErrNoResponders) && tries < 20 && ctx.Err() == nil {
			tries++
			time.Sleep(100 * time.Millisecond)
			return true
		}
		return false
	}
	for left > 0 {
		batch, err := c.Fetch(int(min(left, 1024)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			if leaderless(err) {
				continue
			}
			return fmt.Errorf("bus: read %s: %w", bucket, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			left--
			if op := m.Headers().Get("KV-Operation"); op == "DEL" || op == "PURGE" || m.Headers().Get(jetstream.MarkerReasonHeader) != "" {
				continue
			}
			if err := fn(strings.TrimPrefix(m.Subject(), prefix), m); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			if got == 0 && leaderless(err) {
				continue
			}
			return fmt.Errorf("bus: read %s: %w", bucket, err)
		}
		if got == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("bus: read %s: %w", bucket, err)
			}
			return fmt.Errorf("bus: read %s: %d keys pending, none delivered within 5s", bucket, left)
		}
	}
	return nil
}
