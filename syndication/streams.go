package syndication

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/profiles"
)

// Streams this package owns, beyond bus's table (the lead may move the names
// there). None holds a profile value except the feed, which holds exactly
// what pull partners may read.
const (
	// StreamOut holds the per-partner delivery tasks (work queue).
	StreamOut = "ADSYN_SYND_OUT"
	// StreamFeed holds the newest view per partner and user, for pull partners.
	StreamFeed = "ADSYN_SYND_FEED"
	// StreamLog is where the delivery log was kept before it moved into the
	// history of adsyn_synd_state. Nothing writes it; the audit still scans
	// what an older version left there.
	StreamLog = "ADSYN_SYND_LOG"

	subjectOut  = "adsyn.synd.out."  // <partner>.<shard>
	subjectFeed = "adsyn.synd.feed." // <partner>.<user>
	subjectDLQ  = "adsyn.synd.dlq."  // <partner>

	// ChangeConsumer is the durable consumer the workers share on the
	// profile change feed.
	ChangeConsumer = "adsyn_synd"
)

// Provision creates this package's streams; it is idempotent.
func Provision(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if replicas < 1 {
		replicas = 1
	}
	for _, cfg := range []jetstream.StreamConfig{{
		Name:        StreamOut,
		Description: "syndication tasks: bring a partner up to date on a user",
		Subjects:    []string{subjectOut + ">"},
		Retention:   jetstream.WorkQueuePolicy,
	}, {
		Name:              StreamFeed,
		Description:       "pull feed: the newest view of each user per partner",
		Subjects:          []string{subjectFeed + ">"},
		MaxMsgsPerSubject: 1,
	}} {
		cfg.Storage = jetstream.FileStorage
		cfg.Replicas = replicas
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("syndication: provision stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// task is one message of StreamOut: bring the partner up to date on a user,
// at least to a version; or on several users of one shard (Batch), from
// changes fanned out together.
type task struct {
	User    string     `json:"u,omitempty"`
	Version uint64     `json:"v,omitempty"`
	Batch   []taskUser `json:"b,omitempty"`
}

type taskUser struct {
	User    string `json:"u"`
	Version uint64 `json:"v"`
}

// maxBatch bounds the users of one task message.
const maxBatch = 256

// decode reads a task message: its users, each once at its highest version,
// in the order they came. Any invalid id makes the whole message malformed.
func (t *task) decode(b []byte) ([]taskUser, bool) {
	if json.Unmarshal(b, t) != nil {
		return nil, false
	}
	users := t.Batch
	if len(users) == 0 {
		users = []taskUser{{User: t.User, Version: t.Version}}
	}
	out := users[:0]
	at := make(map[string]int, len(users))
	for _, u := range users {
		if !profiles.ValidID(u.User) {
			return nil, false
		}
		if i, ok := at[u.User]; ok {
			out[i].Version = max(out[i].Version, u.Version)
			continue
		}
		at[u.User] = len(out)
		out = append(out, u)
	}
	return out, true
}

func shardOf(user string, shards int) int {
	return int(xxhash.Sum64String(user) % uint64(shards))
}

func outSubject(partner string, shard int) string {
	return subjectOut + partner + "." + strconv.Itoa(shard)
}

func laneName(partner string, shard int) string {
	return "synd_" + partner + "_" + strconv.Itoa(shard)
}

// enqueue publishes a task asynchronously; the caller waits on the future.
func enqueue(js jetstream.JetStream, p *Partner, user string, version uint64) (jetstream.PubAckFuture, error) {
	b, _ := json.Marshal(task{User: user, Version: version})
	f, err := js.PublishAsync(outSubject(p.ID, shardOf(user, p.Shards)), b)
	if err != nil {
		return nil, fmt.Errorf("syndication: enqueue for %s: %w", p.ID, err)
	}
	return f, nil
}

// enqueueBatch publishes one task for several users of a shard
// asynchronously; the caller waits on the future.
func enqueueBatch(js jetstream.JetStream, p *Partner, shard int, users []taskUser) (jetstream.PubAckFuture, error) {
	t := task{Batch: users}
	if len(users) == 1 {
		t = task{User: users[0].User, Version: users[0].Version}
	}
	b, _ := json.Marshal(t)
	f, err := js.PublishAsync(outSubject(p.ID, shard), b)
	if err != nil {
		return nil, fmt.Errorf("syndication: enqueue for %s: %w", p.ID, err)
	}
	return f, nil
}

// awaitAll waits for every future; the first failure is returned.
func awaitAll(ctx context.Context, futures []jetstream.PubAckFuture) error {
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("syndication: enqueue: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// purgeTasks drops the queued tasks of a partner whose lanes do not run
// (gone): nobody would take them, and enabling it again resyncs every user.
func (w *Worker) purgeTasks(ctx context.Context, id string) {
	s, err := w.js.Stream(ctx, StreamOut)
	if err == nil {
		err = s.Purge(ctx, jetstream.WithPurgeSubject(subjectOut+id+".>"))
	}
	if err != nil {
		w.o.log.Warn("syndication: purge the tasks of a partner that does not deliver; retrying", "partner", id, "err", err)
		return
	}
	w.purged[id] = true
}
