package profiles

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/keyring"
)

// Reader opens stored profiles for the processes that work from them
// (syndication, the edge's profile creatives): it holds the keyring and reads
// the users' data keys. It never opens contact fields.
type Reader struct {
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	feed jetstream.Stream // the bucket's stream: the change feed
	keys *dataKeys
}

// NewReader opens adsyn_profiles, its change feed and the users' data keys.
func NewReader(ctx context.Context, js jetstream.JetStream, ring *keyring.Keyring) (*Reader, error) {
	if ring == nil {
		return nil, fmt.Errorf("%w: nil keyring", keyring.ErrKeyring)
	}
	kv, err := js.KeyValue(ctx, bus.BucketProfiles)
	if err != nil {
		return nil, fmt.Errorf("profiles: open %s: %w", bus.BucketProfiles, err)
	}
	feed, err := js.Stream(ctx, feedStream)
	if err != nil {
		return nil, fmt.Errorf("profiles: open %s: %w", feedStream, err)
	}
	keys, err := openDataKeys(ctx, js, ring)
	if err != nil {
		return nil, err
	}
	return &Reader{js: js, kv: kv, feed: feed, keys: keys}, nil
}

// Decode opens a stored record, contact fields left sealed. A record whose
// data key is destroyed gives ErrShredded.
func (r *Reader) Decode(ctx context.Context, data []byte) (*Profile, error) {
	rec, err := parse(data)
	if err != nil {
		return nil, err
	}
	if rec.Schema == schemaLegacy {
		return rec.legacy(), nil
	}
	key, err := r.keys.get(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	return rec.sealed(key)
}

// Latest returns the latest profile of a user, contact fields left sealed:
// what the ad server's profile creatives read. An absent user, and one
// whose data key is destroyed, give ErrNotFound.
func (r *Reader) Latest(ctx context.Context, id string) (*Profile, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	e, err := r.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("profiles: get %s: %w", id, err)
	}
	return r.fromEntry(ctx, e)
}

// fromEntry opens a bucket entry as Latest does.
func (r *Reader) fromEntry(ctx context.Context, e jetstream.KeyValueEntry) (*Profile, error) {
	p, err := r.Decode(ctx, e.Value())
	if errors.Is(err, ErrShredded) {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	p.Version = e.Revision()
	return p, nil
}
