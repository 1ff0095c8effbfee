package syndication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication/webhook"
)

// state is what a partner last received about a user (adsyn_synd_state,
// key <partner>.<user>). A revision written for a delivery's answer carries
// its log entry too, so one write records both: the bucket keeps the newest
// logDepth revisions of each key, and that history is the delivery log.
type state struct {
	Version uint64    `json:"v"`
	Hash    string    `json:"h,omitempty"` // of the view sent; empty after a deletion
	Holds   bool      `json:"holds"`       // the partner holds data of the user
	First   time.Time `json:"first,omitzero"`
	Last    time.Time `json:"last"`
	Type    string    `json:"type"`
	ID      string    `json:"id"`
	// Pending is the webhook-id of a first delivery under way. Written with
	// Holds before the request, it keeps an erasure from skipping a partner
	// that got data whose answer was never recorded (a crash); later
	// deliveries rely on JetStream redelivery to mark the state untrusted.
	Pending string `json:"pending,omitempty"`
	// Entry is the delivery this revision records; nil in an intent, a
	// revert, or a state as getState returns it.
	Entry *Delivery `json:"entry,omitempty"`
}

// logDepth is how many revisions of each (partner, user) the state bucket
// keeps (the most a bucket allows): the delivery log's depth.
const logDepth = jetstream.KeyValueMaxHistory

// Event types of the webhook body.
const (
	TypeUpserted = "profile.upserted"
	TypeDeleted  = "profile.deleted"
)

// Outcomes of a delivery in the log.
const (
	OutcomeDelivered  = "delivered"   // the endpoint answered 2xx
	OutcomePublished  = "published"   // written to the pull feed
	OutcomeDeadLetter = "dead_letter" // refused (4xx) or retries exhausted
	OutcomeDisabled   = "disabled"    // the endpoint answered 410
)

// Delivery is one entry of the delivery log: what was sent, when, the answer.
// It names the fields sent, never their values.
type Delivery struct {
	Seq        uint64           `json:"seq"`
	Time       time.Time        `json:"time"`
	Partner    string           `json:"partner"`
	User       string           `json:"user"`
	WebhookID  string           `json:"webhook_id"`
	Type       string           `json:"type"`
	Version    uint64           `json:"version"`
	Fields     []profiles.Field `json:"fields,omitempty"`
	Outcome    string           `json:"outcome"`
	Status     int              `json:"status,omitempty"`
	Answer     string           `json:"answer,omitempty"` // start of the response body
	Error      string           `json:"error,omitempty"`
	Attempts   int              `json:"attempts"`
	DurationMS int64            `json:"duration_ms"`
	First      bool             `json:"first,omitempty"`  // the partner did not hold the user's data before
	LagMS      int64            `json:"lag_ms,omitempty"` // from the profile's change to this answer
}

// DeadLetter is a delivery that was refused or exhausted its retries. It
// holds the task, not the data: a replay sends the user's newest view.
type DeadLetter struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Partner   string    `json:"partner"`
	User      string    `json:"user"`
	Version   uint64    `json:"version"`
	Type      string    `json:"type"`
	WebhookID string    `json:"webhook_id"`
	Reason    string    `json:"reason"`
	Status    int       `json:"status,omitempty"`
	Attempts  int       `json:"attempts"`
}

// FeedItem is one entry of the pull feed: the newest event per user.
type FeedItem struct {
	Cursor    uint64          `json:"cursor"`
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Ledger records deliveries and answers questions about them: the state per
// (partner, user), the delivery log, the dead letters and the pull feed.
type Ledger struct {
	js    jetstream.JetStream
	reg   *Registry
	state jetstream.KeyValue
}

// NewLedger opens the stores; reg names the partners.
func NewLedger(ctx context.Context, js jetstream.JetStream, reg *Registry) (*Ledger, error) {
	kv, err := js.KeyValue(ctx, bus.BucketSyndState)
	if err != nil {
		return nil, fmt.Errorf("syndication: open %s: %w", bus.BucketSyndState, err)
	}
	return &Ledger{js: js, reg: reg, state: kv}, nil
}

func stateKey(partner, user string) string { return partner + "." + user }

// stateSubject prefixes a key of adsyn_synd_state in its stream.
const stateSubject = "$KV." + bus.BucketSyndState + "."

// getState returns what the partner last received about the user, and the
// revision of that record (0 when there is none).
func (l *Ledger) getState(ctx context.Context, partner, user string) (state, uint64, error) {
	e, err := l.state.Get(ctx, stateKey(partner, user))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return state{}, 0, nil
	}
	if err != nil {
		return state{}, 0, fmt.Errorf("syndication: read state %s/%s: %w", partner, user, err)
	}
	var s state
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return state{}, 0, fmt.Errorf("syndication: state %s/%s: %w", partner, user, err)
	}
	s.Entry = nil // the last delivery's, not the next write's
	return s, e.Revision(), nil
}

// putState writes the state if it is still at revision rev (0: absent), so
// a delivery never records over a newer one.
func (l *Ledger) putState(ctx context.Context, partner, user string, s state, rev uint64) (uint64, error) {
	b, _ := json.Marshal(s)
	var err error
	if rev == 0 {
		rev, err = l.state.Create(ctx, stateKey(partner, user), b)
	} else {
		rev, err = l.state.Update(ctx, stateKey(partner, user), b, rev)
	}
	if err != nil {
		return 0, fmt.Errorf("syndication: write state %s/%s: %w", partner, user, err)
	}
	return rev, nil
}

// putStateAsync sends the same compare-and-set write as putState without
// waiting: the future's acknowledgement carries the new revision.
func (l *Ledger) putStateAsync(partner, user string, s state, rev uint64) (jetstream.PubAckFuture, error) {
	m := nats.NewMsg(stateSubject + stateKey(partner, user))
	m.Data, _ = json.Marshal(s)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	f, err := l.js.PublishMsgAsync(m)
	if err != nil {
		return nil, fmt.Errorf("syndication: write state %s/%s: %w", partner, user, err)
	}
	return f, nil
}

// record writes a delivery's entry on the log without changing the state:
// the current state again, with the entry, under compare-and-set
// (bus.Update); a user the partner has no state of gets one with the entry
// alone. It returns the new revision.
func (l *Ledger) record(ctx context.Context, d Delivery) (uint64, error) {
	key := stateKey(d.Partner, d.User)
	rev, err := bus.Update(ctx, l.state, key, func(cur jetstream.KeyValueEntry) ([]byte, error) {
		var s state
		if err := json.Unmarshal(cur.Value(), &s); err != nil {
			return nil, fmt.Errorf("syndication: state %s/%s: %w", d.Partner, d.User, err)
		}
		s.Entry = &d
		return json.Marshal(s)
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		b, _ := json.Marshal(state{Entry: &d})
		rev, err = l.state.Create(ctx, key, b)
	}
	if err != nil {
		return 0, fmt.Errorf("syndication: delivery log %s/%s: %w", d.Partner, d.User, err)
	}
	return rev, nil
}

func (l *Ledger) deadLetter(ctx context.Context, d DeadLetter) error {
	b, _ := json.Marshal(d)
	if _, err := l.js.Publish(ctx, subjectDLQ+d.Partner, b); err != nil {
		return fmt.Errorf("syndication: dead letter: %w", err)
	}
	return nil
}

// publishFeed makes an event the partner's newest for the user; older ones
// for the same user are dropped by the stream (one per subject).
func (l *Ledger) publishFeed(ctx context.Context, partner, user, id string, body []byte) error {
	m := nats.NewMsg(subjectFeed + partner + "." + user)
	m.Header.Set(webhook.HeaderID, id)
	m.Data = body
	if _, err := l.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("syndication: feed: %w", err)
	}
	return nil
}

// Recipients lists the partners that received data of a user (GDPR Art. 19),
// whether they still hold it, and when.
func (l *Ledger) Recipients(ctx context.Context, user string) ([]profiles.Recipient, error) {
	if !profiles.ValidID(user) {
		return nil, nil
	}
	var partners []string
	if err := bus.Keys(ctx, l.js, bus.BucketSyndState, "*."+user, func(key string) error {
		partner, _, _ := strings.Cut(key, ".")
		partners = append(partners, partner)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("syndication: recipients: %w", err)
	}
	var out []profiles.Recipient
	for _, partner := range partners {
		s, _, err := l.getState(ctx, partner, user)
		if err != nil {
			return nil, err
		}
		if s.First.IsZero() && !s.Holds {
			continue // never received data (a deletion at most)
		}
		r := profiles.Recipient{Partner: partner, First: s.First, Last: s.Last, Holds: s.Holds}
		if p, ok := l.reg.Get(partner); ok {
			r.Name = p.Name
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b profiles.Recipient) int { return strings.Compare(a.Partner, b.Partner) })
	return out, nil
}

// read returns up to limit messages of stream on filter from sequence start.
func read(ctx context.Context, js jetstream.JetStream, stream, filter string, start uint64, limit int) ([]jetstream.Msg, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if start > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	c, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("syndication: read %s: %w", stream, err)
	}
	var out []jetstream.Msg
	for len(out) < limit {
		batch, err := c.FetchNoWait(limit - len(out))
		if err != nil {
			return nil, fmt.Errorf("syndication: read %s: %w", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			out = append(out, m)
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("syndication: read %s: %w", stream, err)
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}

func seqOf(m jetstream.Msg) uint64 {
	if md, err := m.Metadata(); err == nil {
		return md.Sequence.Stream
	}
	return 0
}

// ForPartner returns the deliveries to a partner after cursor, oldest
// first, and the cursor to continue from; it reads up to limit revisions of
// the partner's states, and those without an entry (intents) are skipped.
func (l *Ledger) ForPartner(ctx context.Context, partner string, cursor uint64, limit int) ([]Delivery, uint64, error) {
	msgs, err := read(ctx, l.js, bus.KVStream(bus.BucketSyndState), stateSubject+partner+".*", cursor+1, limit)
	if err != nil {
		return nil, cursor, err
	}
	if len(msgs) > 0 {
		cursor = seqOf(msgs[len(msgs)-1])
	}
	return entries(msgs), cursor, nil
}

// ForUser returns the deliveries about a user to every partner (the log
// keeps the newest logDepth revisions per partner and user), oldest first.
func (l *Ledger) ForUser(ctx context.Context, user string, limit int) ([]Delivery, error) {
	msgs, err := read(ctx, l.js, bus.KVStream(bus.BucketSyndState), stateSubject+"*."+user, 0, limit)
	if err != nil {
		return nil, err
	}
	return entries(msgs), nil
}

// entries returns the log entries that revisions of states carry, each
// stamped with its revision (the stream sequence).
func entries(msgs []jetstream.Msg) []Delivery {
	out := make([]Delivery, 0, len(msgs))
	for _, m := range msgs {
		if d, ok := entryOf(m.Data()); ok {
			d.Seq = seqOf(m)
			out = append(out, d)
		}
	}
	return out
}

// entryOf decodes the log entry of a state revision, if it has one.
func entryOf(b []byte) (Delivery, bool) {
	var s struct {
		Entry *Delivery `json:"entry"`
	}
	if json.Unmarshal(b, &s) != nil || s.Entry == nil {
		return Delivery{}, false
	}
	return *s.Entry, true
}

// DeadLetters returns up to limit dead letters of a partner, oldest first.
func (l *Ledger) DeadLetters(ctx context.Context, partner string, limit int) ([]DeadLetter, error) {
	msgs, err := read(ctx, l.js, bus.StreamDeadMail, subjectDLQ+partner, 0, limit)
	if err != nil {
		return nil, err
	}
	return decodeAll(msgs, func(d *DeadLetter, seq uint64) { d.Seq = seq }), nil
}

// decodeAll decodes each message's JSON into a T stamped with its stream
// sequence; a message that does not decode is skipped.
func decodeAll[T any](msgs []jetstream.Msg, stamp func(*T, uint64)) []T {
	out := make([]T, 0, len(msgs))
	for _, m := range msgs {
		var v T
		if json.Unmarshal(m.Data(), &v) == nil {
			stamp(&v, seqOf(m))
			out = append(out, v)
		}
	}
	return out
}

// Replay queues the partner's dead letters again and removes them from the
// dead-letter stream. Each becomes a sync to the user's newest view, so a
// replay never sends something older than what the partner has.
func (l *Ledger) Replay(ctx context.Context, partner string) (int, error) {
	p, ok := l.reg.Get(partner)
	if !ok {
		return 0, ErrNotFound
	}
	dlq, err := l.js.Stream(ctx, bus.StreamDeadMail)
	if err != nil {
		return 0, fmt.Errorf("syndication: replay: %w", err)
	}
	n := 0
	for {
		letters, err := l.DeadLetters(ctx, partner, 500)
		if err != nil || len(letters) == 0 {
			return n, err
		}
		for _, d := range letters {
			f, err := enqueue(l.js, &p, d.User, d.Version)
			if err != nil {
				return n, err
			}
			if err := awaitAll(ctx, []jetstream.PubAckFuture{f}); err != nil {
				return n, err
			}
			if err := dlq.DeleteMsg(ctx, d.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				return n, fmt.Errorf("syndication: replay: remove dead letter %d: %w", d.Seq, err)
			}
			n++
		}
	}
}

// Feed returns up to limit events of a pull partner after cursor, in order,
// and the cursor to continue from. Only the newest event per user is kept,
// so a reader starting at 0 gets the current view of every user it may see
// and the deletions it must apply.
func (l *Ledger) Feed(ctx context.Context, partner string, cursor uint64, limit int) ([]FeedItem, uint64, error) {
	msgs, err := read(ctx, l.js, StreamFeed, subjectFeed+partner+".*", cursor+1, limit)
	if err != nil {
		return nil, cursor, err
	}
	out := make([]FeedItem, 0, len(msgs))
	for _, m := range msgs {
		var env envelope
		if json.Unmarshal(m.Data(), &env) == nil {
			out = append(out, FeedItem{Cursor: seqOf(m), ID: m.Headers().Get(webhook.HeaderID), Type: env.Type, Timestamp: env.Timestamp, Data: env.Data})
		}
		cursor = seqOf(m)
	}
	return out, cursor, nil
}

// envelope is the webhook body the Standard Webhooks spec recommends.
type envelope struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}
