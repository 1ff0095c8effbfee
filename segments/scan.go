package segments

import (
	"context"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
)

// Scan calls fn with every text of every visitor record revision stored in
// adsyn_segments (segment ids and rules, languages, capped campaigns), for
// `adsyn audit`. The key names the visitor and the revision's sequence; a
// record that does not decode is passed whole as its one text. store is the
// bucket's name.
func Scan(ctx context.Context, js jetstream.JetStream, fn func(store, key, field, text string) error) (int, error) {
	const store = bus.BucketSegments
	return bus.Scan(ctx, js, bus.KVStream(store), func(m bus.Stored) error {
		if m.Deleted || len(m.Data) == 0 {
			return nil
		}
		key := bus.KVKey(store, m.Subject) + " rev " + strconv.FormatUint(m.Seq, 10)
		var r Record
		if err := DecodeRecord(m.Data, &r); err != nil {
			return fn(store, key, "(undecodable)", string(m.Data))
		}
		for i, s := range r.Segments {
			n := strconv.Itoa(i)
			if err := fn(store, key, "segments["+n+"].id", s.ID); err != nil {
				return err
			}
			if err := fn(store, key, "segments["+n+"].rule", s.Rule); err != nil {
				return err
			}
		}
		for i, l := range r.Langs {
			if err := fn(store, key, "langs["+strconv.Itoa(i)+"]", l); err != nil {
				return err
			}
		}
		for i, c := range r.Caps {
			if err := fn(store, key, "caps["+strconv.Itoa(i)+"].campaign", c.Campaign); err != nil {
				return err
			}
		}
		return nil
	})
}
