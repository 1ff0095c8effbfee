package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/api"
	"github.com/adsyn/adsyn/internal/bus"
)

// Role is what a key may do.
type Role string

const (
	Admin     Role = "admin"     // everything, including staff audit reads
	Marketer  Role = "marketer"  // its own advertiser (Owner)
	Publisher Role = "publisher" // its own sites (Owner is the publisher id)
	Partner   Role = "partner"   // its own feed and delivery log (Owner is the partner id)
	Support   Role = "support"   // reads personal data; every read is audit-logged
	// User is a registered user acting on their own account (Owner is the user id).
	User Role = "user"
	// Telephony is a call-tracking provider posting calls (POST /v1/events/call).
	Telephony Role = "telephony"
)

// Roles lists every role.
var Roles = []Role{Admin, Marketer, Publisher, Partner, Support, User, Telephony}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

var (
	ErrNoKey      = errors.New("auth: no API key")
	ErrUnknownKey = errors.New("auth: unknown or revoked API key")
	ErrBadRole    = errors.New("auth: unknown role")
	ErrNoOwner    = errors.New("auth: this role needs an owner")
	ErrNotFound   = errors.New("auth: no such key")
)

// Principal is who is calling.
type Principal struct {
	KeyID   string    `json:"id"`
	Role    Role      `json:"role"`
	Owner   string    `json:"owner,omitempty"`
	Name    string    `json:"name,omitempty"`
	Created time.Time `json:"created"`
	// Revoked is set on the record kept of a revoked key (see All).
	Revoked time.Time `json:"revoked,omitzero"`
}

// Is reports whether p has one of roles.
func (p Principal) Is(roles ...Role) bool { return slices.Contains(roles, p.Role) }

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the caller set by Require.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// SecretPrefix starts every key, so leaked keys are easy to scan for.
const SecretPrefix = "adsyn_"

// Hash returns the stored form of a secret.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Keys is the key store and the HTTP guard.
type Keys struct {
	kv    jetstream.KeyValue
	audit *Audit
	log   *slog.Logger

	mu      sync.RWMutex
	byHash  map[string]Principal
	revoked map[string]Principal // by key id; never authenticates
	ready   chan struct{}
}

// NewKeys opens the key store and starts watching it; it stops with ctx.
func NewKeys(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (*Keys, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := js.KeyValue(ctx, bus.BucketKeys)
	if err != nil {
		return nil, fmt.Errorf("auth: open %s: %w", bus.BucketKeys, err)
	}
	k := &Keys{kv: kv, audit: NewAudit(js), log: log, byHash: map[string]Principal{}, revoked: map[string]Principal{}, ready: make(chan struct{})}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: watch keys: %w", err)
	}
	go k.watch(w)
	select {
	case <-k.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(10 * time.Second):
		return nil, errors.New("auth: key store did not load within 10s")
	}
	return k, nil
}

func (k *Keys) watch(w jetstream.KeyWatcher) {
	defer w.Stop()
	for e := range w.Updates() {
		if e == nil {
			close(k.ready)
			continue
		}
		k.mu.Lock()
		if id, ok := strings.CutPrefix(e.Key(), revokedPrefix); ok {
			var p Principal
			if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &p) == nil {
				k.revoked[id] = p
			}
		} else if e.Operation() != jetstream.KeyValuePut {
			delete(k.byHash, e.Key())
		} else {
			var p Principal
			if err := json.Unmarshal(e.Value(), &p); err != nil {
				k.log.Error("auth: bad key record", "err", err)
			} else {
				k.byHash[e.Key()] = p
			}
		}
		k.mu.Unlock()
	}
}

// Audit returns the audit log.
func (k *Keys) Audit() *Audit { return k.audit }

// Create makes a key and returns its secret, which is not stored anywhere.
func (k *Keys) Create(ctx context.Context, role Role, owner, name string) (string, Principal, error) {
	if !role.Valid() {
		return "", Principal{}, fmt.Errorf("%w %q", ErrBadRole, role)
	}
	if owner == "" && role != Admin && role != Support && role != Telephony {
		return "", Principal{}, fmt.Errorf("%w: %s", ErrNoOwner, role)
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	secret := SecretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	var id [6]byte
	_, _ = rand.Read(id[:])
	p := Principal{KeyID: "key_" + hex.EncodeToString(id[:]), Role: role, Owner: owner, Name: name, Created: time.Now().UTC().Truncate(time.Second)}
	b, _ := json.Marshal(p)
	if _, err := k.kv.Create(ctx, Hash(secret), b); err != nil {
		return "", Principal{}, fmt.Errorf("auth: create key: %w", err)
	}
	k.mu.Lock()
	k.byHash[Hash(secret)] = p // visible at once to this process
	k.mu.Unlock()
	return secret, p, nil
}

// List returns every live key, without secrets.
func (k *Keys) List() []Principal {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]Principal, 0, len(k.byHash))
	for _, p := range k.byHash {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Principal) int { return strings.Compare(a.KeyID, b.KeyID) })
	return out
}

// revokedPrefix starts the bucket key of a revoked key's record. A hash
// never has it, so old processes that read it as a key can never match it.
const revokedPrefix = "revoked."

// All returns every live key and the records of revoked ones, without
// secrets or hashes, by creation time.
func (k *Keys) All() []Principal {
	k.mu.RLock()
	out := make([]Principal, 0, len(k.byHash)+len(k.revoked))
	for _, p := range k.byHash {
		out = append(out, p)
	}
	for _, p := range k.revoked {
		out = append(out, p)
	}
	k.mu.RUnlock()
	slices.SortFunc(out, func(a, b Principal) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.KeyID, b.KeyID)
	})
	return out
}

// Revoke deletes the key with id, then keeps a record of it for All.
func (k *Keys) Revoke(ctx context.Context, id string) error {
	k.mu.RLock()
	var (
		hash string
		p    Principal
	)
	for h, kp := range k.byHash {
		if kp.KeyID == id {
			hash, p = h, kp
		}
	}
	k.mu.RUnlock()
	if hash == "" {
		return ErrNotFound
	}
	// The delete is the revocation; the record after it only informs.
	if err := k.kv.Delete(ctx, hash); err != nil {
		return fmt.Errorf("auth: revoke %s: %w", id, err)
	}
	k.mu.Lock()
	delete(k.byHash, hash)
	p.Revoked = time.Now().UTC().Truncate(time.Second)
	k.revoked[id] = p
	k.mu.Unlock()
	b, _ := json.Marshal(p)
	if _, err := k.kv.Put(ctx, revokedPrefix+id, b); err != nil {
		return fmt.Errorf("auth: revoke %s: revoked, but its record was not kept: %w", id, err)
	}
	return nil
}

// Authenticate returns the principal of a secret.
func (k *Keys) Authenticate(secret string) (Principal, error) {
	if secret == "" {
		return Principal{}, ErrNoKey
	}
	if len(secret) > 128 || !strings.HasPrefix(secret, SecretPrefix) {
		return Principal{}, ErrUnknownKey
	}
	h := Hash(secret)
	k.mu.RLock()
	p, ok := k.byHash[h]
	k.mu.RUnlock()
	// The map lookup is on the hash, which leaks nothing about the secret;
	// the compare below keeps the check constant-time all the same.
	if !ok || subtle.ConstantTimeCompare([]byte(h), []byte(Hash(secret))) != 1 {
		return Principal{}, ErrUnknownKey
	}
	return p, nil
}

// Bearer extracts the key from the Authorization header.
func Bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// Require lets through callers holding one of roles (admin always), with the
// principal in the request context; others get 401 or 403, and a 403 is
// written to the audit log.
func (k *Keys) Require(roles ...Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := k.Authenticate(Bearer(r))
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="adsyn"`)
				msg := "send an API key as Authorization: Bearer <key>"
				if errors.Is(err, ErrUnknownKey) {
					msg = "the API key is unknown or revoked"
				}
				api.WriteError(w, http.StatusUnauthorized, "unauthorized", msg)
				return
			}
			if p.Role != Admin && !slices.Contains(roles, p.Role) {
				k.Forbid(w, r.WithContext(WithPrincipal(r.Context(), p)), r.Method+" "+r.URL.Path)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// Forbid answers 403 and records the denied attempt.
func (k *Keys) Forbid(w http.ResponseWriter, r *http.Request, resource string) {
	p, _ := FromContext(r.Context())
	if err := k.audit.Record(r.Context(), p, r.Method, resource, false); err != nil {
		k.log.Error("auth: audit write failed", "err", err)
	}
	api.WriteError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("a %s key may not access %s", p.Role, resource))
}
