package profiles

import (
	"context"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
)

// Scan calls fn with every profile revision stored in adsyn_profiles,
// opened by r (contact fields stay sealed), for `adsyn audit`. The key names
// the user and the revision's sequence; p is nil for a record that does not
// parse, raw its bytes. A revision whose user was erased (its data key
// destroyed) is ciphertext nobody can open: it is skipped and counted in
// shredded. store is the bucket's name.
func Scan(ctx context.Context, js jetstream.JetStream, r *Reader, fn func(store, key string, p *Profile, raw []byte) error) (shredded int, err error) {
	const store = bus.BucketProfiles
	_, err = bus.Scan(ctx, js, bus.KVStream(store), func(m bus.Stored) error {
		if m.Deleted || len(m.Data) == 0 {
			return nil
		}
		key := bus.KVKey(store, m.Subject) + " rev " + strconv.FormatUint(m.Seq, 10)
		p, err := r.Decode(ctx, m.Data)
		if errors.Is(err, ErrShredded) {
			shredded++
			return nil
		}
		if err != nil {
			return fn(store, key, nil, m.Data)
		}
		p.Version = m.Seq
		return fn(store, key, p, m.Data)
	})
	return shredded, err
}

// Texts calls fn with every text of p held outside a sealed field: what
// may be shown or syndicated, and the record's own labels.
func (p *Profile) Texts(fn func(field, text string)) {
	fn("name", p.Name)
	fn("city", p.City)
	fn("language", p.Language)
	for i, c := range p.Competence {
		fn("competence["+strconv.Itoa(i)+"]", c)
	}
	if p.Price != nil {
		fn("price.amount", p.Price.Amount)
		fn("price.currency", p.Price.Currency)
	}
	for _, m := range []struct {
		name string
		m    *Media
	}{{"photo", p.Photo}, {"resume", p.Resume}} {
		if m.m != nil {
			fn(m.name+".type", m.m.Type)
		}
	}
	for i, c := range p.Consents {
		fn("consents["+strconv.Itoa(i)+"].source", c.Source)
	}
}
