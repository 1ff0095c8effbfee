package adserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
)

// ErrTaken is a campaign or site id that another owner deleted: its
// statistics stay theirs, so the id is never given to anyone else.
var ErrTaken = errors.New("adserver: id of a deleted record")

// Key prefixes in adsyn_campaigns.
const (
	prefixAdvertiser = "adv"
	prefixCampaign   = "camp"
	prefixCreative   = "crea"
	prefixSite       = "site"
	prefixPace       = "pace" // pace.<edge>: one edge's spend, see pacer.go
	prefixGone       = "gone" // gone.camp.<id>, gone.site.<id>: tombstones, see checkGone
)

// tombstone is what a deleted campaign or site leaves under gone.<key>, kept
// for good: statistics are keyed by the id, so the id stays its owner's. It
// is a key of its own rather than a marked record so that nothing reading
// camp.* or site.* (index, watch, API) needs to know about it.
type tombstone struct {
	Owner   string    `json:"owner"`
	Deleted time.Time `json:"deleted"`
}

// ownerOf returns the owner of the records whose ids key statistics.
func ownerOf(v any) (string, bool) {
	switch v := v.(type) {
	case *Campaign:
		return v.Advertiser, true
	case *Site:
		return v.Publisher, true
	}
	return "", false
}

// Store reads and writes the campaign model in adsyn_campaigns, one JSON
// value per key: adv.<id>, camp.<id>, crea.<id>, site.<id>.
type Store struct {
	kv    jetstream.KeyValue
	check func(string) error
	now   func() time.Time
}

// NewStore opens the bucket. It honours WithTargetCheck.
func NewStore(ctx context.Context, js jetstream.JetStream, opts ...StoreOption) (*Store, error) {
	cfg, err := newConfig(opts, StoreOption.store)
	if err != nil {
		return nil, err
	}
	return openStore(ctx, js, cfg)
}

func openStore(ctx context.Context, js jetstream.JetStream, cfg *config) (*Store, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.BucketCampaigns)
	if err != nil {
		return nil, fmt.Errorf("adserver: open %s: %w", bus.BucketCampaigns, err)
	}
	return &Store{kv: kv, check: cfg.check, now: cfg.now}, nil
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, 10*time.Second)
}

func key(prefix, id string) string { return prefix + "." + id }

// get decodes the value of prefix.id into v and returns its revision.
func (s *Store) get(ctx context.Context, prefix, id string, v any) (uint64, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	e, err := s.kv.Get(ctx, key(prefix, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("%w: %s %s", ErrNotFound, prefix, id)
	}
	if err != nil {
		return 0, fmt.Errorf("adserver: get %s: %w", key(prefix, id), err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("adserver: decode %s: %w", key(prefix, id), err)
	}
	return e.Revision(), nil
}

// write stores v: create only (rev 0, create true), unconditional (rev 0),
// or only over revision rev. A campaign or site is refused (ErrTaken) when
// its id was deleted by another owner.
func (s *Store) write(ctx context.Context, prefix, id string, v any, create bool, rev uint64) (uint64, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("adserver: encode %s: %w", key(prefix, id), err)
	}
	k := key(prefix, id)
	owner, owned := ownerOf(v)
	if owned {
		if err := s.checkGone(ctx, prefix, id, owner); err != nil {
			return 0, err
		}
	}
	switch {
	case create:
		rev, err = s.kv.Create(ctx, k, b)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("%w: %s", ErrExists, k)
		}
		if err == nil && owned {
			if err := s.undoIfGone(ctx, prefix, id, owner, rev); err != nil {
				return 0, err
			}
		}
	case rev > 0:
		rev, err = s.kv.Update(ctx, k, b, rev)
		if bus.IsWrongLastSequence(err) {
			return 0, fmt.Errorf("%w: %s changed since revision you read", ErrConflict, k)
		}
	default:
		rev, err = s.kv.Put(ctx, k, b)
	}
	if err != nil {
		return 0, fmt.Errorf("adserver: put %s: %w", k, err)
	}
	return rev, nil
}

// checkGone refuses id when a tombstone says another owner deleted it. The
// same owner may take its id back, and its statistics continue.
func (s *Store) checkGone(ctx context.Context, prefix, id, owner string) error {
	k := key(prefixGone, key(prefix, id))
	e, err := s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("adserver: get %s: %w", k, err)
	}
	var t tombstone
	// An unreadable tombstone refuses too: fail closed.
	if err := json.Unmarshal(e.Value(), &t); err != nil || t.Owner != owner {
		kind := "site"
		if prefix == prefixCampaign {
			kind = "campaign"
		}
		return fmt.Errorf("%w: %s %q was deleted by another owner and its statistics stay theirs; choose another id", ErrTaken, kind, id)
	}
	return nil
}

// undoIfGone closes the race of a create against a delete by another owner:
// remove writes the tombstone before it deletes, so a create that succeeded
// after the delete sees the tombstone here and takes its record back.
func (s *Store) undoIfGone(ctx context.Context, prefix, id, owner string, rev uint64) error {
	err := s.checkGone(ctx, prefix, id, owner)
	if !errors.Is(err, ErrTaken) {
		return err
	}
	if derr := s.kv.Delete(ctx, key(prefix, id), jetstream.LastRevision(rev)); derr != nil && !bus.IsWrongLastSequence(derr) {
		return fmt.Errorf("adserver: undo %s: %w", key(prefix, id), derr)
	}
	return err
}

// remove deletes prefix.id; v is the record, whose owner a campaign's or a
// site's tombstone keeps. The first owner's tombstone stays.
func (s *Store) remove(ctx context.Context, prefix, id string, v any) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if _, err := s.kv.Get(ctx, key(prefix, id)); errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: %s %s", ErrNotFound, prefix, id)
	}
	if owner, ok := ownerOf(v); ok {
		b, err := json.Marshal(tombstone{Owner: owner, Deleted: s.now().UTC()})
		if err != nil {
			return fmt.Errorf("adserver: encode tombstone %s: %w", key(prefix, id), err)
		}
		k := key(prefixGone, key(prefix, id))
		if _, err := s.kv.Create(ctx, k, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("adserver: put %s: %w", k, err)
		}
	}
	if err := s.kv.Delete(ctx, key(prefix, id)); err != nil {
		return fmt.Errorf("adserver: delete %s: %w", key(prefix, id), err)
	}
	return nil
}

// Advertiser returns the advertiser id.
func (s *Store) Advertiser(ctx context.Context, id string) (*Advertiser, uint64, error) {
	var a Advertiser
	rev, err := s.get(ctx, prefixAdvertiser, id, &a)
	return &a, rev, err
}

// Campaign returns the campaign id.
func (s *Store) Campaign(ctx context.Context, id string) (*Campaign, uint64, error) {
	var c Campaign
	rev, err := s.get(ctx, prefixCampaign, id, &c)
	return &c, rev, err
}

// Creative returns the creative id.
func (s *Store) Creative(ctx context.Context, id string) (*Creative, uint64, error) {
	var c Creative
	rev, err := s.get(ctx, prefixCreative, id, &c)
	return &c, rev, err
}

// Site returns the site id.
func (s *Store) Site(ctx context.Context, id string) (*Site, uint64, error) {
	var st Site
	rev, err := s.get(ctx, prefixSite, id, &st)
	return &st, rev, err
}

// PutAdvertiser validates and stores a.
func (s *Store) PutAdvertiser(ctx context.Context, a *Advertiser) error {
	if err := a.Validate(); err != nil {
		return err
	}
	_, err := s.write(ctx, prefixAdvertiser, a.ID, a, false, 0)
	return err
}

// PutCampaign validates c (refusing sensitive targeting, P1), checks its
// advertiser exists, and stores it.
func (s *Store) PutCampaign(ctx context.Context, c *Campaign) error {
	if err := s.checkCampaign(ctx, c); err != nil {
		return err
	}
	_, err := s.write(ctx, prefixCampaign, c.ID, c, false, 0)
	return err
}

// PutCreative validates cr, checks its campaign belongs to its advertiser, and stores it.
func (s *Store) PutCreative(ctx context.Context, cr *Creative) error {
	if err := s.checkCreative(ctx, cr); err != nil {
		return err
	}
	_, err := s.write(ctx, prefixCreative, cr.ID, cr, false, 0)
	return err
}

// PutSite validates and stores st.
func (s *Store) PutSite(ctx context.Context, st *Site) error {
	if err := st.Validate(); err != nil {
		return err
	}
	_, err := s.write(ctx, prefixSite, st.ID, st, false, 0)
	return err
}

func (s *Store) checkCampaign(ctx context.Context, c *Campaign) error {
	if err := c.Validate(s.check); err != nil {
		return err
	}
	if _, _, err := s.Advertiser(ctx, c.Advertiser); err != nil {
		if errors.Is(err, ErrNotFound) {
			return invalid("advertiser %q does not exist", c.Advertiser)
		}
		return err
	}
	return nil
}

func (s *Store) checkCreative(ctx context.Context, cr *Creative) error {
	if err := cr.Validate(); err != nil {
		return err
	}
	c, _, err := s.Campaign(ctx, cr.Campaign)
	if errors.Is(err, ErrNotFound) {
		return invalid("campaign %q does not exist", cr.Campaign)
	}
	if err != nil {
		return err
	}
	if c.Advertiser != cr.Advertiser {
		return invalid("campaign %q belongs to another advertiser", cr.Campaign)
	}
	return nil
}
