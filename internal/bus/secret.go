package bus

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/keyring"
)

// sealedPrefix marks a sealed secret; a value without it is one an older
// version stored in clear.
var sealedPrefix = []byte("sealed1:")

// Secret returns the shared secret called name, creating it with size random
// bytes on first use. Every process of a deployment gets the same bytes, so
// a token one edge signs, any edge verifies. The bucket holds the secret
// sealed with ring, which every process must share (--profile-keys); one
// found in clear, from an older version, is sealed and the bucket rebuilt
// without the clear bytes.
func Secret(ctx context.Context, js jetstream.JetStream, ring *keyring.Keyring, name string, size int) ([]byte, error) {
	if ring == nil {
		return nil, fmt.Errorf("bus: secret %s: no keyring", name)
	}
	kv, err := js.KeyValue(ctx, BucketSecrets)
	if err != nil {
		return nil, fmt.Errorf("bus: secrets: %w", err)
	}
	if _, err := Reseal(ctx, js, BucketSecrets, func(key string, v []byte) ([]byte, bool, error) {
		if bytes.HasPrefix(v, sealedPrefix) {
			return v, false, nil
		}
		return sealSecret(ring, key, v), true, nil
	}); err != nil {
		return nil, err
	}
	if e, err := kv.Get(ctx, name); err == nil {
		return openSecret(ring, name, e.Value())
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("bus: secret %s: %w", name, err)
	}
	b := make([]byte, size)
	_, _ = rand.Read(b)
	if _, err := kv.Create(ctx, name, sealSecret(ring, name, b)); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("bus: secret %s: %w", name, err)
		}
		// Another process created it first: use theirs.
		e, err := kv.Get(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("bus: secret %s: %w", name, err)
		}
		return openSecret(ring, name, e.Value())
	}
	return b, nil
}

func secretAAD(name string) []byte { return []byte(BucketSecrets + "/" + name) }

func sealSecret(ring *keyring.Keyring, name string, secret []byte) []byte {
	return append(bytes.Clone(sealedPrefix), ring.Seal(secret, secretAAD(name))...)
}

func openSecret(ring *keyring.Keyring, name string, v []byte) ([]byte, error) {
	if !bytes.HasPrefix(v, sealedPrefix) {
		return nil, fmt.Errorf("bus: secret %s: stored in clear", name)
	}
	b, err := ring.Open(v[len(sealedPrefix):], secretAAD(name))
	if err != nil {
		return nil, fmt.Errorf("bus: secret %s: %w (every process needs the same keyring, --profile-keys)", name, err)
	}
	return b, nil
}
