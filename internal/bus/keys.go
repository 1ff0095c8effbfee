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
// It reads with an ordered consumer until the server has none pending. Not
// a KV watch (ListKeys, WatchAll): a watch whose consumer info fails under
// load takes the first key for the last, and ends early with keys missing.
func Latest(ctx context.Context, js jetstream.JetStream, bucket, filter string, headersOnly bool, fn func(key string, m jetstream.Msg) error) error {
	prefix, stream := "$KV."+bucket+".", KVStream(bucket)
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{prefix + filter},
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		HeadersOnly:       headersOnly,
		InactiveThreshold: 10 * time.Second, // if the delete below is lost
	})
	if err != nil {
		return fmt.Errorf("bus: read %s: %w", bucket, err)
	}
	// Gone at once: reads may come by the thousand, and the server bounds
	// the consumers.
	defer func() {
		if info := c.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = js.DeleteConsumer(dctx, stream, info.Name)
			cancel()
		}
	}()
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
	for {
		// No wait: what is pending comes at once, and nothing pending
		// (an empty bucket) answers at once too.
		batch, err := c.FetchNoWait(1024)
		if err != nil {
			if leaderless(err) {
				continue
			}
			return fmt.Errorf("bus: read %s: %w", bucket, err)
		}
		got, done := 0, false
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("bus: read %s: %w", bucket, err)
			}
			done = md.NumPending == 0
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
		if done || got == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bus: read %s: %w", bucket, err)
		}
	}
}
