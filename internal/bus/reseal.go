package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Reseal rewrites bucket when fn changes one of its values: fn gets each
// key's current value and returns the value to keep and whether it changed
// (a secret found in clear, sealed now). A changed bucket is rebuilt: every
// value is read, the bucket's stream purged, which deletes its block files
// and with them the bytes of every old value, and the values put back. It
// returns how many values fn changed.
//
// Between the purge and the puts another process sees the bucket empty; a
// value it creates meanwhile wins over the one put back. Rebuilding happens
// once, at the first start after an upgrade.
func Reseal(ctx context.Context, js jetstream.JetStream, bucket string, fn func(key string, value []byte) ([]byte, bool, error)) (int, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return 0, fmt.Errorf("bus: reseal %s: %w", bucket, err)
	}
	var keys []string
	if err := Keys(ctx, js, bucket, ">", func(key string) error { keys = append(keys, key); return nil }); err != nil {
		return 0, fmt.Errorf("bus: reseal %s: %w", bucket, err)
	}
	type kept struct {
		key   string
		value []byte
	}
	var all []kept
	changed := 0
	for _, key := range keys {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("bus: reseal %s: %w", bucket, err)
		}
		v, ch, err := fn(key, e.Value())
		if err != nil {
			return 0, fmt.Errorf("bus: reseal %s %s: %w", bucket, key, err)
		}
		if ch {
			changed++
		}
		all = append(all, kept{key, v})
	}
	if changed == 0 {
		return 0, nil
	}
	s, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return 0, fmt.Errorf("bus: reseal %s: %w", bucket, err)
	}
	if err := s.Purge(ctx); err != nil {
		return 0, fmt.Errorf("bus: reseal %s: purge: %w", bucket, err)
	}
	for _, k := range all {
		if _, err := kv.Create(ctx, k.key, k.value); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return changed, fmt.Errorf("bus: reseal %s %s: %w", bucket, k.key, err)
		}
	}
	return changed, nil
}
