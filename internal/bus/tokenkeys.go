package bus

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/keyring"
)

// The click-token keys rotate without downtime in two steps that need no
// coordination between edges: a new key is added to the set with a time
// from which edges sign with it, far enough ahead that every edge watching
// the set verifies it by then; the keys it replaces stay until the tokens
// they signed have expired.
const (
	tokenKeysName = "click-tokens"
	// legacyTokenKey is the single key of earlier versions; it becomes the
	// set's key 0, so the tokens it signed stay valid.
	legacyTokenKey = "click-token"
	// MaxTokenKeys bounds the set: the edge verifies with each.
	MaxTokenKeys = 8
)

// TokenKey is one click-token key. Its ID goes into every token it signs,
// so a token finds its key whatever the set's order.
type TokenKey struct {
	ID       byte      `json:"id"`
	Key      []byte    `json:"key"`
	SignFrom time.Time `json:"sign_from"` // edges sign with it from then on
	Created  time.Time `json:"created"`
}

// TokenKeys is the set of click-token keys, oldest first.
type TokenKeys struct {
	Keys []TokenKey `json:"keys"`
}

// Signing is the key edges sign with at now: the newest whose SignFrom has
// come. ok is false only for an empty set.
func (s TokenKeys) Signing(now time.Time) (k TokenKey, ok bool) {
	for _, c := range s.Keys {
		if !c.SignFrom.After(now) && (!ok || !c.SignFrom.Before(k.SignFrom)) {
			k, ok = c, true
		}
	}
	return k, ok
}

// NextSwitch is the earliest SignFrom after now: when the signing key changes.
func (s TokenKeys) NextSwitch(now time.Time) (time.Time, bool) {
	var next time.Time
	for _, c := range s.Keys {
		if c.SignFrom.After(now) && (next.IsZero() || c.SignFrom.Before(next)) {
			next = c.SignFrom
		}
	}
	return next, !next.IsZero()
}

// LoadTokenKeys returns the click-token key set, making it on first use
// from the single key of earlier versions, or a new one.
func LoadTokenKeys(ctx context.Context, js jetstream.JetStream, ring *keyring.Keyring) (TokenKeys, uint64, error) {
	kv, err := js.KeyValue(ctx, BucketSecrets)
	if err != nil {
		return TokenKeys{}, 0, fmt.Errorf("bus: secrets: %w", err)
	}
	if e, err := kv.Get(ctx, tokenKeysName); err == nil {
		s, err := openTokenKeys(ring, e.Value())
		return s, e.Revision(), err
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return TokenKeys{}, 0, fmt.Errorf("bus: click-token keys: %w", err)
	}
	first, err := Secret(ctx, js, ring, legacyTokenKey, 32)
	if err != nil {
		return TokenKeys{}, 0, err
	}
	s := TokenKeys{Keys: []TokenKey{{ID: 0, Key: first, Created: time.Now().UTC()}}}
	sealed, err := sealTokenKeys(ring, s)
	if err != nil {
		return TokenKeys{}, 0, err
	}
	rev, err := kv.Create(ctx, tokenKeysName, sealed)
	if errors.Is(err, jetstream.ErrKeyExists) {
		// Another process made it first: use theirs.
		return LoadTokenKeys(ctx, js, ring)
	}
	if err != nil {
		return TokenKeys{}, 0, fmt.Errorf("bus: click-token keys: %w", err)
	}
	return s, rev, nil
}

// RotateTokenKeys adds a new click-token key that edges sign with from
// now+lead, and drops the keys whose tokens have all expired: those
// replaced more than ttl ago. lead must outlast the time every edge takes
// to see the set (they watch it); ttl is the edges' token TTL.
func RotateTokenKeys(ctx context.Context, js jetstream.JetStream, ring *keyring.Keyring, lead, ttl time.Duration) (TokenKeys, error) {
	if lead < 0 || ttl <= 0 {
		return TokenKeys{}, fmt.Errorf("bus: rotate click-token keys: lead %s, ttl %s", lead, ttl)
	}
	kv, err := js.KeyValue(ctx, BucketSecrets)
	if err != nil {
		return TokenKeys{}, fmt.Errorf("bus: secrets: %w", err)
	}
	for {
		s, rev, err := LoadTokenKeys(ctx, js, ring)
		if err != nil {
			return TokenKeys{}, err
		}
		now := time.Now().UTC()
		next := rotated(s, now, lead, ttl)
		sealed, err := sealTokenKeys(ring, next)
		if err != nil {
			return TokenKeys{}, err
		}
		if _, err := kv.Update(ctx, tokenKeysName, sealed, rev); err == nil {
			return next, nil
		} else if !IsWrongLastSequence(err) {
			return TokenKeys{}, fmt.Errorf("bus: rotate click-token keys: %w", err)
		}
		// Rotated by someone else meanwhile: read theirs and add ours to it.
	}
}

// rotated is s with a new key signing from now+lead, less the keys no
// token signed with can still count: replaced (the next key signing) more
// than ttl ago. At most MaxTokenKeys stay, the newest.
func rotated(s TokenKeys, now time.Time, lead, ttl time.Duration) TokenKeys {
	keys := slices.Clone(s.Keys)
	slices.SortFunc(keys, func(a, b TokenKey) int { return a.SignFrom.Compare(b.SignFrom) })
	var kept []TokenKey
	for i, k := range keys {
		if i+1 < len(keys) && now.Sub(keys[i+1].SignFrom) > ttl {
			continue // replaced long enough ago
		}
		kept = append(kept, k)
	}
	used := map[byte]bool{}
	var last byte
	for _, k := range kept {
		used[k.ID] = true
		last = k.ID
	}
	id := last + 1
	for used[id] {
		id++
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	kept = append(kept, TokenKey{ID: id, Key: key, SignFrom: now.Add(lead), Created: now})
	if n := len(kept); n > MaxTokenKeys {
		kept = kept[n-MaxTokenKeys:]
	}
	return TokenKeys{Keys: kept}
}

// WatchTokenKeys calls fn with the set at once and after every change,
// until ctx ends. A set this process cannot open is logged and skipped: it
// keeps the one it has.
func WatchTokenKeys(ctx context.Context, js jetstream.JetStream, ring *keyring.Keyring, log *slog.Logger, fn func(TokenKeys)) error {
	kv, err := js.KeyValue(ctx, BucketSecrets)
	if err != nil {
		return fmt.Errorf("bus: secrets: %w", err)
	}
	w, err := kv.Watch(ctx, tokenKeysName, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("bus: watch click-token keys: %w", err)
	}
	go func() {
		defer func() { _ = w.Stop() }()
		for e := range w.Updates() {
			if e == nil {
				continue // the end of the initial values
			}
			s, err := openTokenKeys(ring, e.Value())
			if err == nil && len(s.Keys) == 0 {
				err = errors.New("bus: click-token keys: an empty set")
			}
			if err != nil {
				log.Error("click-token keys changed, and this process cannot use them; it keeps the ones it has", "err", err)
				continue
			}
			fn(s)
		}
	}()
	return nil
}

func sealTokenKeys(ring *keyring.Keyring, s TokenKeys) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return sealSecret(ring, tokenKeysName, b), nil
}

func openTokenKeys(ring *keyring.Keyring, v []byte) (TokenKeys, error) {
	b, err := openSecret(ring, tokenKeysName, v)
	if err != nil {
		return TokenKeys{}, err
	}
	defer clear(b)
	var s TokenKeys
	if err := json.Unmarshal(b, &s); err != nil {
		return TokenKeys{}, fmt.Errorf("bus: click-token keys: %w", err)
	}
	return s, nil
}
