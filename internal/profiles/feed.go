package profiles

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
)

// The change feed is the stream behind adsyn_profiles: one message per
// write or deletion of a user's record, its sequence the record's revision.
const (
	feedStream  = "KV_" + bus.BucketProfiles
	feedSubject = "$KV." + bus.BucketProfiles + "."
)

// Change is one entry of the change feed: a user's record written or
// deleted. Version is the record's revision; it orders a user's changes.
type Change struct {
	User    string
	Version uint64
	// Deleted: the record was erased or deleted. LatestChange also says so,
	// with Version 0, of a user never stored.
	Deleted bool
	Profile *Profile // contact fields sealed; nil when Deleted or Err
	Err     error    // the record did not open
	msg     jetstream.Msg
}

// errNotFollowed: a change LatestChange read has nobody to answer.
var errNotFollowed = errors.New("profiles: the change was read, not followed: nothing to acknowledge")

// Ack tells the feed the change is handled.
func (c *Change) Ack() error {
	if c.msg == nil {
		return errNotFollowed
	}
	return c.msg.Ack()
}

// Nak hands the change back to the feed, to come again after delay.
func (c *Change) Nak(delay time.Duration) error {
	if c.msg == nil {
		return errNotFollowed
	}
	return c.msg.NakWithDelay(delay)
}

// Follower is a durable reader of the change feed: processes that follow
// under the same name share its changes, each handed to one of them. It
// starts with each user's newest change.
type Follower struct {
	Durable     string
	Description string
	AckWait     time.Duration // a change not acked within it goes to another follower
	MaxPending  int           // changes handed out and not yet acked
	Batch       int           // changes fetched at a time
	// OnError hears of the feed's errors and of messages that are no
	// change of a user (they are dropped).
	OnError func(error)
}

// Follow hands every change of the feed to fn, opened, until the returned
// context is stopped or drained. fn acks or naks each change.
func (r *Reader) Follow(ctx context.Context, f Follower, fn func(*Change)) (jetstream.ConsumeContext, error) {
	if f.OnError == nil {
		f.OnError = func(error) {}
	}
	cons, err := r.js.CreateOrUpdateConsumer(ctx, feedStream, jetstream.ConsumerConfig{
		Durable:       f.Durable,
		Description:   f.Description,
		FilterSubject: feedSubject + ">",
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       f.AckWait,
		MaxAckPending: f.MaxPending,
		MaxDeliver:    -1,
	})
	if err != nil {
		return nil, fmt.Errorf("profiles: follow changes as %s: %w", f.Durable, err)
	}
	var opts []jetstream.PullConsumeOpt
	if f.Batch > 0 {
		opts = append(opts, jetstream.PullMaxMessages(f.Batch))
	}
	opts = append(opts, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { f.OnError(err) }))
	cc, err := cons.Consume(func(m jetstream.Msg) {
		user := strings.TrimPrefix(m.Subject(), feedSubject)
		md, err := m.Metadata()
		if err != nil || !ValidID(user) {
			f.OnError(fmt.Errorf("profiles: change feed message %s dropped: %v", m.Subject(), err))
			_ = m.Term()
			return
		}
		c := r.change(ctx, user, md.Sequence.Stream, m.Headers(), m.Data())
		c.msg = m
		fn(&c)
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("profiles: follow changes as %s: %w", f.Durable, err)
	}
	return cc, nil
}

// LatestChange returns the newest change of a user's record, as the feed
// gave or will give it. A record whose data key cannot be read now is an
// error (retry); one that does not open is a Change with Err.
func (r *Reader) LatestChange(ctx context.Context, user string) (Change, error) {
	if !ValidID(user) {
		return Change{}, ErrNotFound
	}
	last, err := r.feed.GetLastMsgForSubject(ctx, feedSubject+user)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Change{User: user, Deleted: true}, nil
	}
	if err != nil {
		return Change{}, fmt.Errorf("profiles: read %s: %w", user, err)
	}
	c := r.change(ctx, user, last.Sequence, last.Header, last.Data)
	if errors.Is(c.Err, ErrKeyUnavailable) {
		return Change{}, fmt.Errorf("profiles: read %s: %w", user, c.Err)
	}
	return c, nil
}

// change opens one message of the feed.
func (r *Reader) change(ctx context.Context, user string, version uint64, h nats.Header, data []byte) Change {
	c := Change{User: user, Version: version}
	if deletion(h) {
		c.Deleted = true
		return c
	}
	c.Profile, c.Err = r.Decode(ctx, data)
	if c.Err == nil {
		c.Profile.Version = version
	}
	return c
}

// deletion reports whether a feed message is a delete or purge marker.
func deletion(h nats.Header) bool {
	if h == nil {
		return false
	}
	op := h.Get("KV-Operation")
	return op == "DEL" || op == "PURGE" || h.Get("Nats-Marker-Reason") != ""
}

// EachUser calls fn with the id of every user stored, until fn fails.
func (r *Reader) EachUser(ctx context.Context, fn func(user string) error) error {
	return bus.Keys(ctx, r.js, bus.BucketProfiles, ">", func(user string) error {
		if !ValidID(user) {
			return nil
		}
		return fn(user)
	})
}
