package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
)

// Entry is one line of the audit log.
type Entry struct {
	Seq      uint64    `json:"seq,omitempty"`
	Time     time.Time `json:"time"`
	KeyID    string    `json:"key_id,omitempty"`
	Actor    string    `json:"actor,omitempty"` // who, when not a key: an operator at the command line
	Role     Role      `json:"role,omitempty"`
	Action   string    `json:"action"`
	Resource string    `json:"resource"`
	Allowed  bool      `json:"allowed"`
	// Subjects are whose personal data was read: user or visitor ids (P7).
	Subjects []string `json:"subjects,omitempty"`
}

// Audit is the append-only log in ADSYN_AUDIT.
type Audit struct {
	js jetstream.JetStream
}

// NewAudit returns the log on js.
func NewAudit(js jetstream.JetStream) *Audit { return &Audit{js: js} }

// Record appends an entry and waits for JetStream to store it, so a read is
// never served without its trace.
func (a *Audit) Record(ctx context.Context, p Principal, action, resource string, allowed bool) error {
	return a.record(ctx, Entry{KeyID: p.KeyID, Role: p.Role, Action: action, Resource: resource, Allowed: allowed})
}

// RecordActor appends what an actor without a key did, such as an operator
// making a key at the command line.
func (a *Audit) RecordActor(ctx context.Context, actor, action, resource string) error {
	return a.record(ctx, Entry{Actor: actor, Action: action, Resource: resource, Allowed: true})
}

// Read records an allowed read of personal data naming whose it was, and
// waits for JetStream to store it: call it before serving the data.
func (a *Audit) Read(ctx context.Context, p Principal, action, resource string, subjects []string) error {
	return a.record(ctx, Entry{KeyID: p.KeyID, Role: p.Role, Action: action, Resource: resource, Allowed: true, Subjects: subjects})
}

func (a *Audit) record(ctx context.Context, e Entry) error {
	e.Time = time.Now().UTC()
	b, _ := json.Marshal(e)
	subj := "adsyn.audit.allowed"
	if !e.Allowed {
		subj = "adsyn.audit.denied"
	}
	if _, err := a.js.Publish(ctx, subj, b); err != nil {
		return fmt.Errorf("auth: audit: %w", err)
	}
	return nil
}

// Recent returns up to limit of the newest entries, oldest first.
func (a *Audit) Recent(ctx context.Context, limit int) ([]Entry, error) {
	s, err := a.js.Stream(ctx, bus.StreamAudit)
	if err != nil {
		return nil, fmt.Errorf("auth: audit stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: audit info: %w", err)
	}
	if info.State.Msgs == 0 || limit <= 0 {
		return []Entry{}, nil
	}
	start := uint64(1)
	if info.State.LastSeq > uint64(limit) {
		start = info.State.LastSeq - uint64(limit) + 1
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start})
	if err != nil {
		return nil, fmt.Errorf("auth: audit read: %w", err)
	}
	out := make([]Entry, 0, limit)
	for len(out) < limit {
		batch, err := c.FetchNoWait(limit - len(out))
		if err != nil {
			return nil, fmt.Errorf("auth: audit read: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var e Entry
			if json.Unmarshal(m.Data(), &e) == nil {
				if md, err := m.Metadata(); err == nil {
					e.Seq = md.Sequence.Stream
				}
				out = append(out, e)
			}
			if md, err := m.Metadata(); err == nil && md.Sequence.Stream >= info.State.LastSeq {
				return out, nil
			}
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}
