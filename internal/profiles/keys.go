package profiles

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/keyring"
)

// maxCachedKeys bounds the opened data keys kept in memory; past it the
// cache starts again empty.
const maxCachedKeys = 4096

// dataKeys keeps each user's random AES-256 data key in adsyn_user_keys,
// wrapped by the keyring. A key is written once and never updated, so its
// bucket holds exactly one message per user, which shred overwrites.
type dataKeys struct {
	kv     jetstream.KeyValue
	stream jetstream.Stream
	ring   *keyring.Keyring

	mu    sync.Mutex
	cache map[string]cipher.AEAD
}

func openDataKeys(ctx context.Context, js jetstream.JetStream, ring *keyring.Keyring) (*dataKeys, error) {
	kv, err := js.KeyValue(ctx, bus.BucketUserKeys)
	if err != nil {
		return nil, fmt.Errorf("profiles: open %s: %w", bus.BucketUserKeys, err)
	}
	st, err := js.Stream(ctx, bus.StreamUserKeys)
	if err != nil {
		return nil, fmt.Errorf("profiles: open %s: %w", bus.StreamUserKeys, err)
	}
	if st.CachedInfo().Config.DenyDelete {
		// Provisioned by hand as a plain KV bucket: its keys could not be shredded.
		return nil, fmt.Errorf("profiles: %s denies message deletes, so erasure could not destroy a key", bus.StreamUserKeys)
	}
	return &dataKeys{kv: kv, stream: st, ring: ring, cache: map[string]cipher.AEAD{}}, nil
}

func wrapAAD(id string) []byte { return []byte("adsyn/user-keys/" + id) }

func newAEAD(key []byte) cipher.AEAD {
	block, _ := aes.NewCipher(key) // 32 bytes: cannot fail
	aead, _ := cipher.NewGCM(block)
	return aead
}

// get returns the user's data key, or ErrShredded when there is none.
func (d *dataKeys) get(ctx context.Context, id string) (cipher.AEAD, error) {
	d.mu.Lock()
	aead, ok := d.cache[id]
	d.mu.Unlock()
	if ok {
		return aead, nil
	}
	e, err := d.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, ErrShredded
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyUnavailable, id, err)
	}
	raw, err := d.ring.Open(e.Value(), wrapAAD(id))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("profiles: unwrap data key of %s: %w", id, errors.Join(err, keyring.ErrSealed))
	}
	aead = newAEAD(raw)
	clear(raw)
	d.remember(id, aead)
	return aead, nil
}

// remember caches a user's data key, forgetting all once the cache is full.
func (d *dataKeys) remember(id string, aead cipher.AEAD) {
	d.mu.Lock()
	if len(d.cache) >= maxCachedKeys {
		clear(d.cache)
	}
	d.cache[id] = aead
	d.mu.Unlock()
}

// ensure returns the user's data key, making it at the user's first write.
func (d *dataKeys) ensure(ctx context.Context, id string) (cipher.AEAD, error) {
	aead, err := d.get(ctx, id)
	if !errors.Is(err, ErrShredded) {
		return aead, err
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	wrapped := d.ring.Seal(raw[:], wrapAAD(id))
	aead = newAEAD(raw[:])
	clear(raw[:])
	_, err = d.kv.Create(ctx, id, wrapped)
	if err == nil {
		// Not read back: in a cluster a replica may answer the read before
		// it has the write, and the new user would look erased.
		d.remember(id, aead)
		return aead, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("profiles: store data key of %s: %w", id, err)
	}
	// Another process made it first: use the stored one.
	return d.get(ctx, id)
}

// shred destroys the user's data key: every message of its subject is
// overwritten in the store's files (secure delete), then the subject is
// purged. Without the key, every sealed copy of the user's data (old
// revisions, media chunks, backups of the block files) stays unreadable.
func (d *dataKeys) shred(ctx context.Context, id string) error {
	d.mu.Lock()
	delete(d.cache, id)
	d.mu.Unlock()
	if err := secureDeleteSubject(ctx, d.stream, "$KV."+bus.BucketUserKeys+"."+id); err != nil {
		return fmt.Errorf("profiles: shred data key of %s: %w", id, err)
	}
	return nil
}

// secret returns a random 32-byte secret of the store (e.g. the link-token
// key), made at first use and kept sealed by the keyring under the key
// "secret.<name>", which no user id can take (user ids have no dots).
func (d *dataKeys) secret(ctx context.Context, name string) ([]byte, error) {
	key, aad := "secret."+name, []byte("adsyn/secrets/"+name)
	for range 2 {
		e, err := d.kv.Get(ctx, key)
		if err == nil {
			b, err := d.ring.Open(e.Value(), aad)
			if err != nil {
				return nil, fmt.Errorf("profiles: open secret %s: %w", name, err)
			}
			return b, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("%w: secret %s: %w", ErrKeyUnavailable, name, err)
		}
		var raw [32]byte
		_, _ = rand.Read(raw[:])
		if _, err := d.kv.Create(ctx, key, d.ring.Seal(raw[:], aad)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("profiles: store secret %s: %w", name, err)
		}
	}
	return nil, fmt.Errorf("%w: secret %s", ErrKeyUnavailable, name)
}

// maxSubjectMsgs bounds the messages secureDeleteSubject overwrites: a data
// key has one, a photo at most a few dozen chunks.
const maxSubjectMsgs = 1024

// secureDeleteSubject overwrites every message of subj in st, newest first,
// then purges the subject.
func secureDeleteSubject(ctx context.Context, st jetstream.Stream, subj string) error {
	for range maxSubjectMsgs {
		m, err := st.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return err
		}
		if err := st.SecureDeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return err
		}
	}
	return st.Purge(ctx, jetstream.WithPurgeSubject(subj))
}

// seal encrypts plaintext under a data key, bound to aad: a version byte,
// the nonce, then ciphertext and tag.
func seal(aead cipher.AEAD, plaintext, aad []byte) []byte {
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	_, _ = rand.Read(out[1:])
	return aead.Seal(out, out[1:], plaintext, aad)
}

const sealVersion = 1

// open decrypts what seal produced with the same aad.
func open(aead cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != sealVersion {
		return nil, keyring.ErrSealed
	}
	plain, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return nil, keyring.ErrSealed
	}
	return plain, nil
}
