package profiles

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/metrics"
)

// Recipient is a partner that received a user's data (GDPR Art. 19).
type Recipient struct {
	Partner string    `json:"partner"`
	Name    string    `json:"name,omitempty"`
	First   time.Time `json:"first_delivery,omitzero"`
	Last    time.Time `json:"last_delivery,omitzero"`
	Holds   bool      `json:"holds_data"` // the last delivery gave data rather than took it back
}

// RecipientsFunc lists the recipients of a user's data; syndication provides it.
type RecipientsFunc func(ctx context.Context, user string) ([]Recipient, error)

// Visitors holds the visitor records users link to their account, in
// adsyn_segments; segments' store provides it, so its cache forgets an
// erased record too.
type Visitors interface {
	// Delete erases a visitor's record, every revision.
	Delete(ctx context.Context, visitor string) error
	// Export returns a visitor's record as the data subject's export shows
	// it; nil when there is none.
	Export(ctx context.Context, visitor string) (any, error)
}

// ErrNoVisitors: a user has a linked visitor record and the store was given
// no Visitors to erase or export it; nothing is done rather than half.
var ErrNoVisitors = errors.New("profiles: no visitor store to reach the linked visitor record")

// Option configures a Store.
type Option func(*options) error

type options struct {
	log        *slog.Logger
	metrics    *metrics.Registry
	recipients RecipientsFunc
	visitors   Visitors
	now        func() time.Time
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("profiles: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithMetrics registers the store's series on r.
func WithMetrics(r *metrics.Registry) Option {
	return func(o *options) error {
		if r == nil {
			return errors.New("profiles: nil metrics registry")
		}
		o.metrics = r
		return nil
	}
}

// WithRecipients sets where exports find the partners that received data.
func WithRecipients(fn RecipientsFunc) Option {
	return func(o *options) error {
		if fn == nil {
			return errors.New("profiles: nil recipients function")
		}
		o.recipients = fn
		return nil
	}
}

// WithVisitors sets where erasure and export reach a user's linked visitor
// record. Without it, erasing or exporting a user who linked one fails.
func WithVisitors(v Visitors) Option {
	return func(o *options) error {
		if v == nil {
			return errors.New("profiles: nil visitors")
		}
		o.visitors = v
		return nil
	}
}

// WithClock sets the clock, for tests.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("profiles: nil clock")
		}
		o.now = now
		return nil
	}
}

// Store reads and writes profiles in adsyn_profiles and their media in
// adsyn_media, sealed under each user's data key, and keeps an in-memory
// search index of the public fields.
type Store struct {
	*Reader
	media      jetstream.ObjectStore
	mediaChunk jetstream.Stream
	ring       *keyring.Keyring
	opts       options
	index      *index

	created, updated, erased, rejected *metrics.Counter
}

// NewStore opens the buckets and starts the search index, which follows the
// bucket until ctx ends.
func NewStore(ctx context.Context, js jetstream.JetStream, ring *keyring.Keyring, opts ...Option) (*Store, error) {
	if ring == nil {
		return nil, fmt.Errorf("%w: nil keyring", keyring.ErrKeyring)
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.metrics == nil {
		o.metrics = metrics.NewRegistry()
	}
	r, err := NewReader(ctx, js, ring)
	if err != nil {
		return nil, err
	}
	s := &Store{Reader: r, ring: ring, opts: o}
	if s.media, err = js.ObjectStore(ctx, bus.ObjectMedia); err != nil {
		return nil, fmt.Errorf("profiles: open %s: %w", bus.ObjectMedia, err)
	}
	if s.mediaChunk, err = js.Stream(ctx, "OBJ_"+bus.ObjectMedia); err != nil {
		return nil, fmt.Errorf("profiles: open %s: %w", bus.ObjectMedia, err)
	}
	m := o.metrics
	s.created = m.Counter("adsyn_profiles_created_total", "Users registered.")
	s.updated = m.Counter("adsyn_profiles_updated_total", "Profile updates written (fields, settings, consents, media).")
	s.erased = m.Counter("adsyn_profiles_erased_total", "Users erased at their request.")
	s.rejected = m.Counter("adsyn_profiles_media_rejected_total", "Uploads refused for their type or size.")
	if s.index, err = startIndex(ctx, s.kv, r, o.log); err != nil {
		return nil, err
	}
	m.Gauge("adsyn_profiles_indexed", "Profiles with a public field in the search index.", func() float64 { return float64(s.index.len()) })
	return s, nil
}

func (s *Store) now() time.Time { return s.opts.now().UTC().Truncate(time.Millisecond) }

// Create registers a user from a registration body; source says where the
// consents in it were given.
func (s *Store) Create(ctx context.Context, pt *Patch, source string) (*Profile, error) {
	if pt.Name == nil {
		return nil, invalid("name", "is required")
	}
	now := s.now()
	p := &Profile{ID: NewID(), Created: now, Public: []Field{}, Consents: []Consent{}}
	if err := pt.Apply(p, now, source); err != nil {
		return nil, err
	}
	key, err := s.keys.ensure(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	b, err := p.encode(key)
	if err != nil {
		return nil, err
	}
	rev, err := s.kv.Create(ctx, p.ID, b)
	if err != nil {
		return nil, fmt.Errorf("profiles: create %s: %w", p.ID, err)
	}
	p.Version = rev
	s.created.Inc()
	return p, nil
}

// load reads and decodes a profile without opening its contact fields.
func (s *Store) load(ctx context.Context, id string) (*Profile, error) {
	return s.Reader.Latest(ctx, id)
}

// Get returns the whole profile, contact fields opened: for the data subject
// and audited staff reads only.
func (s *Store) Get(ctx context.Context, id string) (*Profile, error) {
	p, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.openContact(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// openContact opens the contact fields of p in place.
func (s *Store) openContact(ctx context.Context, p *Profile) error {
	var key cipher.AEAD
	if len(p.sealedContact) > 0 {
		var err error
		if key, err = s.keys.get(ctx, p.ID); err != nil {
			return err
		}
	}
	return p.openContact(key, s.ring)
}

// GetPublic returns the public fields of a profile (the Site's public page).
func (s *Store) GetPublic(ctx context.Context, id string) (Public, error) {
	p, err := s.load(ctx, id)
	if err != nil {
		return Public{}, err
	}
	return SiteView(p), nil
}

// update applies fn to a copy of the current profile and writes it with a
// compare-and-set on the revision (bus.Update).
func (s *Store) update(ctx context.Context, id string, fn func(p *Profile) error) (*Profile, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	var next *Profile
	rev, err := bus.Update(ctx, s.kv, id, func(e jetstream.KeyValueEntry) ([]byte, error) {
		cur, err := s.fromEntry(ctx, e)
		if err != nil {
			return nil, err
		}
		if err := s.openContact(ctx, cur); err != nil {
			return nil, err
		}
		next = cur.clone()
		if err := fn(next); err != nil {
			return nil, err
		}
		// Sealed under the data key, made now for a schema 1 record: a record
		// migrates at its next write.
		key, err := s.keys.ensure(ctx, id)
		if err != nil {
			return nil, err
		}
		return next.encode(key)
	})
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, ErrNotFound
	case errors.Is(err, bus.ErrConflict):
		return nil, ErrConflict
	case err != nil:
		return nil, err
	}
	next.Version = rev
	s.updated.Inc()
	return next, nil
}

// Patch applies a PATCH body.
func (s *Store) Patch(ctx context.Context, id string, pt *Patch, source string) (*Profile, error) {
	return s.update(ctx, id, func(p *Profile) error { return pt.Apply(p, s.now(), source) })
}

// sealedHeader marks a media object sealed under its user's data key;
// objects stored before data keys lack it (a photo in clear, a resume
// sealed by the keyring).
const sealedHeader = "Adsyn-Sealed"

// PutMedia checks and stores a photo or resume, sealed under the user's data
// key, and records it in the profile. A photo loses its metadata first (EXIF,
// GPS, comments: Strip).
func (s *Store) PutMedia(ctx context.Context, id string, k Kind, data []byte) (*Profile, error) {
	typ, err := Sniff(k, data)
	if err != nil {
		s.rejected.Inc()
		return nil, err
	}
	if k == KindPhoto {
		if data, err = Strip(typ, data); err != nil {
			s.rejected.Inc()
			return nil, err
		}
	}
	if _, err := s.load(ctx, id); err != nil {
		return nil, err
	}
	key, err := s.keys.ensure(ctx, id)
	if err != nil {
		return nil, err
	}
	meta := &Media{Type: typ, Size: int64(len(data)), Uploaded: s.now()}
	if k == KindPhoto {
		sum := sha256.Sum256(data)
		meta.Digest = hex.EncodeToString(sum[:])
	}
	obj := jetstream.ObjectMeta{Name: objectName(k, id), Headers: nats.Header{sealedHeader: []string{"data-key"}}}
	if _, err := s.media.Put(ctx, obj, bytes.NewReader(seal(key, data, aad(id, Field(k))))); err != nil {
		return nil, fmt.Errorf("profiles: store %s of %s: %w", k, id, err)
	}
	p, err := s.update(ctx, id, func(p *Profile) error {
		if k == KindResume {
			p.Resume = meta
		} else {
			p.Photo = meta
		}
		p.Updated = meta.Uploaded
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		// Erased meanwhile: take the upload back.
		_ = s.deleteObject(ctx, objectName(k, id))
	}
	return p, err
}

// deleteObject overwrites the chunks of a media object in the store's files
// (secure delete), then deletes the object.
func (s *Store) deleteObject(ctx context.Context, name string) error {
	info, err := s.media.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := secureDeleteSubject(ctx, s.mediaChunk, "$O."+bus.ObjectMedia+".C."+info.NUID); err != nil {
		return err
	}
	if err := s.media.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return err
	}
	return nil
}

// DeleteMedia removes a photo or resume.
func (s *Store) DeleteMedia(ctx context.Context, id string, k Kind) (*Profile, error) {
	p, err := s.update(ctx, id, func(p *Profile) error {
		if k == KindResume {
			p.Resume = nil
		} else {
			p.Photo = nil
		}
		p.Updated = s.now()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.deleteObject(ctx, objectName(k, id)); err != nil {
		return nil, fmt.Errorf("profiles: delete %s of %s: %w", k, id, err)
	}
	return p, nil
}

// Media returns a stored photo or resume, opened; the caller decides who may
// see it (a resume: the data subject and audited staff only).
func (s *Store) Media(ctx context.Context, id string, k Kind) ([]byte, Media, error) {
	p, err := s.load(ctx, id)
	if err != nil {
		return nil, Media{}, err
	}
	meta := p.Photo
	if k == KindResume {
		meta = p.Resume
	}
	if meta == nil {
		return nil, Media{}, ErrNoMedia
	}
	res, err := s.media.Get(ctx, objectName(k, id))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, Media{}, ErrNoMedia
	}
	if err != nil {
		return nil, Media{}, fmt.Errorf("profiles: read %s of %s: %w", k, id, err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return nil, Media{}, fmt.Errorf("profiles: read %s of %s: %w", k, id, err)
	}
	data, err := io.ReadAll(io.LimitReader(res, k.Limit()+1024))
	if err != nil {
		return nil, Media{}, fmt.Errorf("profiles: read %s of %s: %w", k, id, err)
	}
	switch {
	case info.Headers.Get(sealedHeader) != "":
		key, err := s.keys.get(ctx, id)
		if err != nil {
			return nil, Media{}, fmt.Errorf("profiles: open %s of %s: %w", k, id, err)
		}
		if data, err = open(key, data, aad(id, Field(k))); err != nil {
			return nil, Media{}, fmt.Errorf("profiles: open %s of %s: %w", k, id, err)
		}
	case k == KindResume: // stored before data keys: sealed by the keyring
		if data, err = s.ring.Open(data, aad(id, FieldResume)); err != nil {
			return nil, Media{}, fmt.Errorf("profiles: open resume of %s: %w", id, err)
		}
	}
	return data, *meta, nil
}

// PublicPhoto returns the photo when the user made it public.
func (s *Store) PublicPhoto(ctx context.Context, id string) ([]byte, Media, error) {
	p, err := s.load(ctx, id)
	if err != nil {
		return nil, Media{}, err
	}
	if !p.IsPublic(FieldPhoto) {
		return nil, Media{}, ErrNoMedia
	}
	return s.Media(ctx, id, KindPhoto)
}

// Erase deletes everything held about a user: media (chunks overwritten),
// the linked visitor record, the profile with its history (a purge, which
// syndication sees in the change feed and turns into deletions to partners),
// and last the user's data key, overwritten in the store's files: every
// sealed copy left in the block files, old revisions included, then stays
// unreadable even with the keyring. Erase is idempotent: a failed call can
// be repeated, and a repeat after the purge still destroys the key.
func (s *Store) Erase(ctx context.Context, id string) error {
	if !ValidID(id) {
		return ErrNotFound
	}
	p, err := s.load(ctx, id)
	if errors.Is(err, ErrNotFound) {
		if err := s.keys.shred(ctx, id); err != nil {
			return err
		}
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if p.LinkedVisitor != "" && s.opts.visitors == nil {
		return fmt.Errorf("profiles: erase %s: %w", id, ErrNoVisitors) // before anything is gone
	}
	for _, k := range []Kind{KindPhoto, KindResume} {
		if err := s.deleteObject(ctx, objectName(k, id)); err != nil {
			return fmt.Errorf("profiles: erase %s of %s: %w", k, id, err)
		}
	}
	if p.LinkedVisitor != "" {
		if err := s.opts.visitors.Delete(ctx, p.LinkedVisitor); err != nil {
			return fmt.Errorf("profiles: erase visitor record of %s: %w", id, err)
		}
	}
	if err := s.kv.Purge(ctx, id); err != nil {
		return fmt.Errorf("profiles: erase %s: %w", id, err)
	}
	if err := s.keys.shred(ctx, id); err != nil {
		return err
	}
	s.erased.Inc()
	s.opts.log.Info("profiles: user erased", "user", id)
	return nil
}

// File is a stored file in an export.
type File struct {
	Type string `json:"type"`
	Size int64  `json:"size"`
	Data []byte `json:"data"` // base64 in JSON
}

// Export is everything held about a user, for the data subject.
type Export struct {
	Generated time.Time `json:"generated"`
	Profile   *Profile  `json:"profile"`
	Photo     *File     `json:"photo,omitempty"`
	Resume    *File     `json:"resume,omitempty"`
	// The linked visitor record of adsyn_segments, as Visitors.Export
	// gives it (a segments.Record).
	Visitor    any                  `json:"linked_visitor_record,omitempty"`
	Recipients []Recipient          `json:"recipients"`
	Settings   map[Purpose]bool     `json:"consents_in_force"`
	Visibility map[Field]Visibility `json:"visibility"`
}

// Export gathers everything held about a user, decrypted.
func (s *Store) Export(ctx context.Context, id string) (*Export, error) {
	p, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	x := &Export{Generated: s.now(), Profile: p, Recipients: []Recipient{}, Settings: p.ConsentState(), Visibility: visibility(p)}
	for _, k := range []Kind{KindPhoto, KindResume} {
		data, meta, err := s.Media(ctx, id, k)
		if errors.Is(err, ErrNoMedia) {
			continue
		}
		if err != nil {
			return nil, err
		}
		f := &File{Type: meta.Type, Size: meta.Size, Data: data}
		if k == KindPhoto {
			x.Photo = f
		} else {
			x.Resume = f
		}
	}
	if p.LinkedVisitor != "" {
		if s.opts.visitors == nil {
			return nil, fmt.Errorf("profiles: export %s: %w", id, ErrNoVisitors)
		}
		rec, err := s.opts.visitors.Export(ctx, p.LinkedVisitor)
		if err != nil {
			return nil, fmt.Errorf("profiles: export visitor record of %s: %w", id, err)
		}
		x.Visitor = rec
	}
	if s.opts.recipients != nil {
		r, err := s.opts.recipients(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("profiles: export recipients of %s: %w", id, err)
		}
		if r != nil {
			x.Recipients = r
		}
	}
	return x, nil
}

// visibility returns the field → visibility map of the settings.
func visibility(p *Profile) map[Field]Visibility {
	out := map[Field]Visibility{}
	for _, f := range PublicFields {
		out[f] = VisibilityPrivate
		if p.IsPublic(f) {
			out[f] = VisibilityPublic
		}
	}
	for _, f := range []Field{FieldEmail, FieldPhone, FieldResume} {
		out[f] = VisibilityPrivate
	}
	return out
}

// Search returns public profiles matching q, from the index.
func (s *Store) Search(q Query) []Public { return s.index.search(q) }
