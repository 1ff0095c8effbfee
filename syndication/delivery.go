package syndication

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/adsyn/adsyn/internal/profiles"
)

// delivery is one message to send, prepared from the newest profile.
type delivery struct {
	user    string
	version uint64
	typ     string
	id      string
	hash    string // of the view; empty for a deletion
	fields  []profiles.Field
	body    []byte
	prev    state
	prevRev uint64    // revision of the state record to replace; 0 when absent
	changed time.Time // when the profile changed (zero for an erasure), for the lag
}

// prepare reads what the partner has (from what the lane knows, when it can
// trust it) and the newest profile (from the change feed's, when it has
// it), and returns what to send, or nil when the partner is up to date.
// Reads run within the lease.
func (w *Worker) prepare(ctx context.Context, l *lease, p *Partner, t taskUser, states *laneStates, redelivered bool) (*delivery, error) {
	k, ok := states.get(t.User)
	prev, prevRev := k.s, k.rev
	if !ok || redelivered {
		rctx, cancel := l.within(ctx, 0)
		var err error
		prev, prevRev, err = w.led.getState(rctx, p.ID, t.User)
		cancel()
		if err != nil {
			states.forget(t.User)
			return nil, err
		}
		states.put(t.User, prev, prevRev)
	}
	var prof *profiles.Profile
	version := t.Version
	if c, ok := w.recent.get(t.User, t.Version); ok {
		// Seen on the change feed at or after the task's version: any newer
		// change has a task of its own behind this one.
		prof, version = c.p, c.rev
		return w.build(p, t.User, version, prof, prev, prevRev, redelivered)
	}
	rctx, cancel := l.within(ctx, 0)
	last, err := w.profiles.LatestChange(rctx, t.User)
	cancel()
	switch {
	case err != nil:
		return nil, fmt.Errorf("syndication: read profile %s: %w", t.User, err) // retried
	case last.Version == 0: // never stored
		version = max(version, prev.Version)
	case last.Err != nil:
		w.o.log.Error("syndication: undecodable profile left as the partner has it", "user", t.User, "err", last.Err)
		return nil, nil
	default:
		version, prof = last.Version, last.Profile
	}
	return w.build(p, t.User, version, prof, prev, prevRev, redelivered)
}

// build decides what to send for a profile at version (nil: erased) given
// what the partner has.
func (w *Worker) build(p *Partner, user string, version uint64, prof *profiles.Profile, prev state, prevRev uint64, redelivered bool) (*delivery, error) {
	t := task{User: user}
	if version < prev.Version {
		return nil, nil // the partner has newer
	}
	d := &delivery{user: t.User, version: version, prev: prev, prevRev: prevRev}
	if prof != nil {
		d.changed = prof.Updated
	}
	known := prev.Pending == "" && !redelivered // else a request may have landed unrecorded
	view := &encodedView{empty: true}           // an erased profile's
	if prof != nil {
		view = w.views.get(user, version, prof, p.Contract(), w.o.publicURL)
	}
	var data []byte
	if view.empty {
		if !prev.Holds {
			return nil, nil
		}
		d.typ = TypeDeleted
		data, _ = json.Marshal(struct {
			ID      string `json:"id"`
			Version uint64 `json:"version"`
		}{t.User, version})
		d.id = messageID(p.ID, t.User, version, TypeDeleted)
	} else {
		d.hash = view.hash
		if known && prev.Holds && prev.Hash == d.hash {
			return nil, nil
		}
		d.typ = TypeUpserted
		d.fields = view.fields
		data = view.data
		d.id = messageID(p.ID, t.User, version, d.hash)
	}
	d.body = appendEnvelope(make([]byte, 0, len(data)+96), d.typ, time.Now().UTC().Truncate(time.Millisecond), data)
	return d, nil
}

// messageID is the webhook-id: stable for a (partner, user, version) and the
// content sent at it, so retries and redeliveries carry the same id and
// partners can drop duplicates.
func messageID(partner, user string, version uint64, hash string) string {
	sum := sha256.Sum256([]byte(partner + "\x00" + user + "\x00" + strconv.FormatUint(version, 10) + "\x00" + hash))
	return "msg_" + hex.EncodeToString(sum[:12])
}
