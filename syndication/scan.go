package syndication

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/profiles"
)

// IDFields are the fields of the stored documents and views that hold
// generated ids and hashes, not text: an audit skips them (a random id may hold a run
// of digits that reads as a phone number).
var IDFields = []string{"id", "user", "partner", "webhook_id", "data.id", "h", "pending", "entry.user", "entry.partner", "entry.webhook_id"}

// Scan calls fn with every message stored in the pull feed, the delivery
// states and their log (every revision kept), what an older version left in
// the former log stream, and the dead letters (JSON documents; see
// IDFields), for `adsyn audit`; the key names the subject and the sequence.
func Scan(ctx context.Context, js jetstream.JetStream, fn func(store, key string, data []byte) error) (int, error) {
	total := 0
	for _, stream := range []string{StreamFeed, bus.KVStream(bus.BucketSyndState), StreamLog, bus.StreamDeadMail} {
		n, err := bus.Scan(ctx, js, stream, func(m bus.Stored) error {
			return fn(stream, m.Subject+" seq "+strconv.FormatUint(m.Seq, 10), m.Data)
		})
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Views calls fn with the view (JSON) each registered partner gets of p,
// built as the worker builds it, for `adsyn audit`.
func Views(ctx context.Context, js jetstream.JetStream, publicURL string, ps []*profiles.Profile, fn func(partner, user string, view []byte) error) error {
	var partners []Partner
	_, err := bus.Scan(ctx, js, bus.KVStream(bus.BucketPartners), func(m bus.Stored) error {
		var p Partner
		if m.Deleted || json.Unmarshal(m.Data, &p) != nil {
			return nil
		}
		partners = append(partners, p) // every revision: a contract once wider counts too
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range ps {
		for _, pt := range partners {
			b, err := json.Marshal(Build(p, pt.Contract(), publicURL))
			if err != nil {
				return err
			}
			if err := fn(pt.ID, p.ID, b); err != nil {
				return err
			}
		}
	}
	return nil
}
