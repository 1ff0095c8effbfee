package bus

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Secret returns the shared secret called name, creating it with size random
// bytes on first use. Every process of a deployment gets the same bytes, so
// a token one edge signs, any edge verifies.
func Secret(ctx context.Context, js jetstream.JetStream, name string, size int) ([]byte, error) {
	kv, err := js.KeyValue(ctx, BucketSecrets)
	if err != nil {
		return nil, fmt.Errorf("bus: secrets: %w", err)
	}
	if e, err := kv.Get(ctx, name); err == nil {
		return e.Value(), nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("bus: secret %s: %w", name, err)
	}
	b := make([]byte, size)
	_, _ = rand.Read(b)
	if _, err := kv.Create(ctx, name, b); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("bus: secret %s: %w", name, err)
		}
		// Another process created it first: use theirs.
		e, err := kv.Get(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("bus: secret %s: %w", name, err)
		}
		return e.Value(), nil
	}
	return b, nil
}
