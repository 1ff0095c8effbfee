package syndication

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/ids"
	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication/webhook"
)

var (
	ErrNotFound = errors.New("syndication: no such partner")
	ErrExists   = errors.New("syndication: partner exists")
	ErrInvalid  = errors.New("syndication: invalid partner")
)

// State says whether a partner receives deliveries.
type State string

const (
	StateActive State = "active"
	// StateDisabled stops new data. A partner an operator disabled still
	// gets deletions (its contract may have ended: what it holds must go);
	// one whose endpoint answered 410 gets nothing until it is enabled again.
	StateDisabled State = "disabled"
)

// Partner is a partner site and its contract.
type Partner struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	URL    string `json:"url,omitempty"` // webhook endpoint; empty: the partner pulls /v1/feed
	Secret string `json:"secret"`        // whsec_…; shown once, at creation or rotation
	// PreviousSecret still signs, beside Secret, until PreviousUntil: a
	// partner switches to the new secret at its own pace (Standard
	// Webhooks: several signatures in one header).
	PreviousSecret string           `json:"-"`
	PreviousUntil  time.Time        `json:"previous_secret_until,omitzero"`
	Fields         []profiles.Field `json:"fields"`     // the contract's allowlist
	RateLimit      float64          `json:"rate_limit"` // requests per second per worker; 0: unlimited
	State          State            `json:"state"`
	Reason         string           `json:"reason,omitempty"` // why it is disabled
	Gone           bool             `json:"gone,omitempty"`   // disabled by a 410: the endpoint is gone
	Shards         int              `json:"shards"`
	Created        time.Time        `json:"created"`
	Updated        time.Time        `json:"updated"`
}

// Pull reports whether the partner reads the feed instead of receiving webhooks.
func (p Partner) Pull() bool { return p.URL == "" }

// Contract returns the partner's contract.
func (p Partner) Contract() Contract { return Contract{Fields: p.Fields} }

// Spec is what an operator states about a partner; zero fields of an update
// are left alone.
type Spec struct {
	ID        string           `json:"id,omitempty"`
	Name      *string          `json:"name,omitempty"`
	URL       *string          `json:"url,omitempty"`
	Fields    []profiles.Field `json:"fields,omitempty"`
	RateLimit *float64         `json:"rate_limit,omitempty"`
	State     State            `json:"state,omitempty"`
}

// maxPartnerID keeps consumer names built from a partner id short.
const maxPartnerID = 32

// ValidID reports whether id can name a partner (it is a subject token, a
// KV key part and a consumer name part): the one id rule, ids.Valid, in at
// most 32 bytes.
func ValidID(id string) bool { return len(id) <= maxPartnerID && ids.Valid(id) }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// applySpec validates s and writes it into p; allowPrivate lets the URL
// point at loopback and private addresses (see checkEndpoint).
func applySpec(p *Partner, s *Spec, allowPrivate bool) error {
	if s.Name != nil {
		n := strings.TrimSpace(*s.Name)
		if n == "" || len(n) > 100 || strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return invalid("name must be 1-100 printable characters")
		}
		p.Name = n
	}
	if s.URL != nil {
		if *s.URL != "" {
			if err := checkEndpoint(*s.URL, allowPrivate); err != nil {
				return err
			}
		}
		p.URL = *s.URL
	}
	if s.Fields != nil {
		fields := make([]profiles.Field, 0, len(s.Fields))
		for _, f := range s.Fields {
			if !Eligible(f) {
				return invalid("field %q cannot be syndicated; allowed: name, photo, city, competence, price, language", f)
			}
			if !slices.Contains(fields, f) {
				fields = append(fields, f)
			}
		}
		slices.Sort(fields)
		p.Fields = fields
	}
	if s.RateLimit != nil {
		if *s.RateLimit < 0 || *s.RateLimit > 100000 {
			return invalid("rate_limit must be 0 (unlimited) to 100000 requests per second")
		}
		p.RateLimit = *s.RateLimit
	}
	switch s.State {
	case "":
	case StateActive:
		p.State, p.Reason, p.Gone = StateActive, "", false
	case StateDisabled:
		p.State, p.Reason, p.Gone = StateDisabled, "disabled by an operator", false
	default:
		return invalid(`state must be "active" or "disabled"`)
	}
	return nil
}

// WithKeyring seals partners' webhook secrets at rest with ring; the
// registry needs it, and every process of a deployment the same one.
func WithKeyring(ring *keyring.Keyring) SharedOption {
	return func(o *options) error {
		if ring == nil {
			return errors.New("syndication: nil keyring")
		}
		o.ring = ring
		return nil
	}
}

// record is a partner as adsyn_partners stores it: the secret sealed
// (secret_sealed), never in clear. Its Secret shadows Partner's: set only in
// records an older version wrote, which are resealed at start.
type record struct {
	Partner
	Secret         string `json:"secret,omitempty"`
	SecretSealed   []byte `json:"secret_sealed,omitempty"`
	PreviousSealed []byte `json:"previous_secret_sealed,omitempty"`
}

func secretAAD(id string) []byte   { return []byte(bus.BucketPartners + "/" + id) }
func previousAAD(id string) []byte { return []byte(bus.BucketPartners + "/" + id + "/previous") }

// encode returns the stored form of p.
func (r *Registry) encode(p *Partner) []byte {
	rec := record{Partner: *p, SecretSealed: r.o.ring.Seal([]byte(p.Secret), secretAAD(p.ID))}
	if p.PreviousSecret != "" && time.Now().Before(p.PreviousUntil) {
		rec.PreviousSealed = r.o.ring.Seal([]byte(p.PreviousSecret), previousAAD(p.ID))
	} else {
		rec.PreviousUntil = time.Time{} // expired: gone from the record
	}
	b, _ := json.Marshal(rec)
	return b
}

// decode reads a stored partner; clear reports a secret stored in clear.
func (r *Registry) decode(id string, b []byte) (p Partner, clear bool, err error) {
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Partner{}, false, fmt.Errorf("syndication: partner %s record: %w", id, err)
	}
	p = rec.Partner
	switch {
	case rec.SecretSealed != nil:
		s, err := r.o.ring.Open(rec.SecretSealed, secretAAD(id))
		if err != nil {
			return Partner{}, false, fmt.Errorf("syndication: partner %s secret: %w", id, err)
		}
		p.Secret = string(s)
	case rec.Secret != "":
		p.Secret, clear = rec.Secret, true
	}
	if rec.PreviousSealed != nil {
		s, err := r.o.ring.Open(rec.PreviousSealed, previousAAD(id))
		if err != nil {
			return Partner{}, false, fmt.Errorf("syndication: partner %s previous secret: %w", id, err)
		}
		p.PreviousSecret = string(s)
	}
	return p, clear, nil
}

// Registry is the partner registry in adsyn_partners, mirrored in memory by a
// watch so every process sees changes (a 410 disabling a partner) at once.
type Registry struct {
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	prof *profiles.Reader
	o    options

	mu   sync.RWMutex
	byID map[string]*Partner
	subs map[chan struct{}]struct{}
}

// NewRegistry provisions this package's streams, opens the registry and
// follows it until ctx ends.
func NewRegistry(ctx context.Context, js jetstream.JetStream, opts ...RegistryOption) (*Registry, error) {
	o, err := apply(opts, RegistryOption.registry)
	if err != nil {
		return nil, err
	}
	if err := Provision(ctx, js, o.replicas); err != nil {
		return nil, err
	}
	if o.ring == nil {
		return nil, errors.New("syndication: the registry needs a keyring (WithKeyring) to seal webhook secrets")
	}
	r := &Registry{js: js, o: o, byID: map[string]*Partner{}, subs: map[chan struct{}]struct{}{}}
	if r.kv, err = js.KeyValue(ctx, bus.BucketPartners); err != nil {
		return nil, fmt.Errorf("syndication: open %s: %w", bus.BucketPartners, err)
	}
	// Secrets an older version stored in clear are sealed, and the bucket
	// rebuilt without their bytes.
	n, err := bus.Reseal(ctx, js, bus.BucketPartners, func(id string, v []byte) ([]byte, bool, error) {
		p, clear, err := r.decode(id, v)
		if err != nil || !clear {
			return v, false, nil // left as it is; the watch reports a bad record
		}
		return r.encode(&p), true, nil
	})
	if err != nil {
		return nil, err
	}
	if n > 0 {
		o.log.Warn("syndication: webhook secrets found in clear were sealed; their old revisions are destroyed", "partners", n)
	}
	if r.prof, err = o.profileReader(ctx, js); err != nil {
		return nil, err
	}
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("syndication: watch partners: %w", err)
	}
	ready := make(chan struct{})
	go r.watch(w, ready)
	select {
	case <-ready:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		return nil, errors.New("syndication: partner registry did not load within 30s")
	}
}

func (r *Registry) watch(w jetstream.KeyWatcher, ready chan struct{}) {
	defer w.Stop()
	for e := range w.Updates() {
		if e == nil {
			close(ready)
			continue
		}
		r.mu.Lock()
		if e.Operation() != jetstream.KeyValuePut {
			delete(r.byID, e.Key())
		} else {
			p, _, err := r.decode(e.Key(), e.Value())
			if err != nil || p.Shards < 1 {
				r.o.log.Error("syndication: bad partner record", "partner", e.Key(), "err", err)
			} else {
				r.byID[e.Key()] = &p
			}
		}
		for ch := range r.subs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		r.mu.Unlock()
	}
}

// subscribe returns a channel signalled after each registry change.
func (r *Registry) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	r.mu.Lock()
	r.subs[ch] = struct{}{}
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		delete(r.subs, ch)
		r.mu.Unlock()
	}
}

// Get returns a copy of a partner, secret included.
func (r *Registry) Get(id string) (Partner, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.byID[id]
	if !ok {
		return Partner{}, false
	}
	c := *p
	c.Fields = slices.Clone(p.Fields)
	return c, true
}

// current returns the registry's own record of a partner, for a lane to
// read on each user without a copy: records are replaced, never changed,
// and the caller must not change it either.
func (r *Registry) current(id string) (*Partner, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.byID[id]
	return p, ok
}

// List returns every partner, sorted by id.
func (r *Registry) List() []Partner {
	r.mu.RLock()
	out := make([]Partner, 0, len(r.byID))
	for _, p := range r.byID {
		c := *p
		c.Fields = slices.Clone(p.Fields)
		out = append(out, c)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Partner) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Create registers a partner with a fresh secret, creates its lanes and
// queues its first sync of every user. The secret is returned once here.
func (r *Registry) Create(ctx context.Context, s *Spec) (Partner, error) {
	p := Partner{ID: s.ID, State: StateActive, Shards: r.o.shards, Secret: webhook.NewSecret(), Fields: []profiles.Field{}}
	if p.ID == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		p.ID = "p" + hex.EncodeToString(b[:])
	}
	if !ValidID(p.ID) {
		return Partner{}, invalid("id must be 1-32 lower-case letters, digits, _ or -, starting with a letter or digit")
	}
	if s.Name == nil {
		s.Name = &p.ID
	}
	if s.URL == nil {
		return Partner{}, invalid("url is required (empty string for a pull partner)")
	}
	if err := applySpec(&p, s, r.o.allowPrivate); err != nil {
		return Partner{}, err
	}
	p.Created = time.Now().UTC().Truncate(time.Second)
	p.Updated = p.Created
	if err := r.lanes(ctx, &p); err != nil {
		return Partner{}, err
	}
	if _, err := r.kv.Create(ctx, p.ID, r.encode(&p)); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return Partner{}, fmt.Errorf("%w: %s", ErrExists, p.ID)
		}
		return Partner{}, fmt.Errorf("syndication: create partner %s: %w", p.ID, err)
	}
	r.cache(&p)
	if _, err := r.Resync(ctx, p.ID); err != nil {
		return p, err
	}
	return p, nil
}

// cache makes a write visible to this process before the watch brings it.
func (r *Registry) cache(p *Partner) {
	c := *p
	r.mu.Lock()
	r.byID[p.ID] = &c
	r.mu.Unlock()
}

// lanes creates the durable consumers of a partner's shards: one message in
// flight per shard across all workers keeps each (partner, user) in order.
func (r *Registry) lanes(ctx context.Context, p *Partner) error {
	for s := 0; s < p.Shards; s++ {
		if _, err := r.js.CreateOrUpdateConsumer(ctx, StreamOut, laneConfig(p.ID, s, r.o.laneAckWait())); err != nil {
			return fmt.Errorf("syndication: lane %d of %s: %w", s, p.ID, err)
		}
	}
	return nil
}

func laneConfig(partner string, shard int, ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       laneName(partner, shard),
		Description:   "syndication lane",
		FilterSubject: outSubject(partner, shard),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: 1,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// The work queue deletes what is acked, so the stream itself is the
		// durable record of pending work; the lane's own state can live in
		// memory (a restarted server recreates the lane, which redelivers
		// what was in flight) instead of being flushed to disk 10 times a
		// second per lane.
		MemoryStorage: true,
	}
}

// Update changes a partner with a compare-and-set on its record. A changed
// contract queues a resync, so partners lose fields as well as gain them.
func (r *Registry) Update(ctx context.Context, id string, s *Spec) (Partner, error) {
	p, err := r.update(ctx, id, func(p *Partner) error { return applySpec(p, s, r.o.allowPrivate) })
	if err != nil {
		return p, err
	}
	if s.Fields != nil || s.State == StateActive {
		if _, err := r.Resync(ctx, id); err != nil {
			return p, err
		}
	}
	return p, nil
}

// MaxSecretOverlap bounds how long a replaced webhook secret keeps signing.
const MaxSecretOverlap = 7 * 24 * time.Hour

// RotateSecret gives a partner a new webhook secret, returned once here.
// The one it replaces keeps signing beside it for overlap (0: not at all),
// so the partner can switch without refusing a delivery.
func (r *Registry) RotateSecret(ctx context.Context, id string, overlap time.Duration) (Partner, error) {
	if overlap < 0 || overlap > MaxSecretOverlap {
		return Partner{}, invalid("overlap must be 0 to 7 days")
	}
	return r.update(ctx, id, func(p *Partner) error {
		p.PreviousSecret, p.PreviousUntil = p.Secret, time.Now().UTC().Add(overlap).Truncate(time.Second)
		if overlap == 0 {
			p.PreviousSecret, p.PreviousUntil = "", time.Time{}
		}
		p.Secret = webhook.NewSecret()
		return nil
	})
}

// signingKeys are the keys a delivery to p is signed with at now: its
// secret, and the one it replaced while that still overlaps.
func (p *Partner) signingKeys(now time.Time) ([][]byte, error) {
	key, err := webhook.ParseSecret(p.Secret)
	if err != nil {
		return nil, err
	}
	keys := [][]byte{key}
	if p.PreviousSecret != "" && now.Before(p.PreviousUntil) {
		if prev, err := webhook.ParseSecret(p.PreviousSecret); err == nil {
			keys = append(keys, prev)
		}
	}
	return keys, nil
}

// Gone disables a partner whose endpoint answered 410.
func (r *Registry) Gone(ctx context.Context, id string) (Partner, error) {
	return r.update(ctx, id, func(p *Partner) error {
		p.State, p.Reason, p.Gone = StateDisabled, "the endpoint answered 410 Gone", true
		return nil
	})
}

// delivers reports whether the partner's lanes run: active, or disabled by
// an operator (deletions only).
func (p Partner) delivers() bool { return p.State == StateActive || !p.Gone }

// load reads a partner from the bucket rather than the in-memory mirror.
func (r *Registry) load(ctx context.Context, id string) (Partner, error) {
	e, err := r.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return Partner{}, ErrNotFound
	}
	if err != nil {
		return Partner{}, fmt.Errorf("syndication: read partner %s: %w", id, err)
	}
	p, _, err := r.decode(id, e.Value())
	return p, err
}

// update changes a partner with a compare-and-set on its record (bus.Update).
func (r *Registry) update(ctx context.Context, id string, fn func(p *Partner) error) (Partner, error) {
	if !ValidID(id) {
		return Partner{}, ErrNotFound
	}
	var p Partner
	_, err := bus.Update(ctx, r.kv, id, func(e jetstream.KeyValueEntry) ([]byte, error) {
		var err error
		if p, _, err = r.decode(id, e.Value()); err != nil {
			return nil, err
		}
		if err := fn(&p); err != nil {
			return nil, err
		}
		p.Updated = time.Now().UTC().Truncate(time.Second)
		return r.encode(&p), nil
	})
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return Partner{}, ErrNotFound
	case errors.Is(err, bus.ErrConflict):
		return Partner{}, fmt.Errorf("syndication: update partner %s: %w", id, err)
	case err != nil:
		return Partner{}, err
	}
	r.cache(&p)
	return p, nil
}

// Resync queues a sync of every user for a partner: after its creation or a
// contract change. Users already up to date cost a state read, no request.
func (r *Registry) Resync(ctx context.Context, id string) (int, error) {
	p, ok := r.Get(id)
	if !ok {
		return 0, ErrNotFound
	}
	var futures []jetstream.PubAckFuture
	n := 0
	flush := func() error {
		err := awaitAll(ctx, futures)
		futures = futures[:0]
		return err
	}
	err := r.prof.EachUser(ctx, func(user string) error {
		f, err := enqueue(r.js, &p, user, 0)
		if err != nil {
			return err
		}
		futures = append(futures, f)
		n++
		if len(futures) == 1000 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if err := flush(); err != nil {
		return n, err
	}
	r.o.log.Info("syndication: partner resync queued", "partner", id, "users", n)
	return n, nil
}
