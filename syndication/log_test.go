package syndication_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication"
)

// The delivery log is the history of the states: each delivery is one
// record in NATS, the state it leaves with its answer on it, and nothing is
// written to a stream of its own. Read raw from the bucket's stream: a first
// delivery's intent, then one revision per delivery.
func TestOneRecordPerDelivery(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, ok())
	e.partner("p", rc, profiles.FieldName, profiles.FieldCity)
	u := e.user(`{"name":"Ann","city":"Lyon","consents":{"syndication":true},"visibility":{"name":"public","city":"public"}}`)
	e.worker()
	delivered := func(n int) func() (bool, string) {
		return func() (bool, string) {
			ds, err := e.led.ForUser(e.ctx, u.ID, 100)
			return err == nil && len(ds) == n, "entries: " + string(must(json.Marshal(ds)))
		}
	}
	eventually(t, 10*time.Second, "the first delivery logged", delivered(1))
	e.patch(u.ID, `{"city":"Nice"}`)
	eventually(t, 10*time.Second, "the update logged", delivered(2))
	e.patch(u.ID, `{"city":"Paris"}`)
	eventually(t, 10*time.Second, "the second update logged", delivered(3))

	s, err := e.conn.JS.Stream(e.ctx, bus.KVStream(bus.BucketSyndState))
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(e.ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"$KV." + bus.BucketSyndState + ".p." + u.ID}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	type revision struct {
		Version uint64                `json:"v"`
		Holds   bool                  `json:"holds"`
		Pending string                `json:"pending"`
		ID      string                `json:"id"`
		Entry   *syndication.Delivery `json:"entry"`
	}
	var revs []revision
	for m := range batch.Messages() {
		var r revision
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			t.Fatalf("revision %q: %v", m.Data(), err)
		}
		revs = append(revs, r)
	}
	if len(revs) != 4 {
		t.Fatalf("%d revisions of the state, want 4 (an intent, three deliveries): %+v", len(revs), revs)
	}
	if revs[0].Entry != nil || revs[0].Pending == "" || !revs[0].Holds {
		t.Errorf("the first revision is not the first delivery's intent: %+v", revs[0])
	}
	for i, r := range revs[1:] {
		d := r.Entry
		if d == nil {
			t.Fatalf("revision %d has no log entry: %+v", i+2, r)
		}
		if d.Outcome != syndication.OutcomeDelivered || d.Status/100 != 2 || d.WebhookID != r.ID || d.Version != r.Version || d.First != (i == 0) || r.Pending != "" {
			t.Errorf("revision %d: state %+v, entry %+v", i+2, r, *d)
		}
	}
	ds, err := e.led.ForUser(e.ctx, u.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		if d.Seq == 0 || i > 0 && d.Seq <= ds[i-1].Seq || d.Version != revs[i+1].Version {
			t.Errorf("entry %d of the log: %+v", i, d)
		}
	}
	if _, err := e.conn.JS.Stream(e.ctx, syndication.StreamLog); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the former log stream exists: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A delivery whose state write loses its compare-and-set (the record moved
// while the request was out) still has its answer logged, on the state as
// it then is, and its task runs again: the resend, with the same
// webhook-id, is logged too.
func TestAnswerLoggedWhenItsStateWriteLoses(t *testing.T) {
	e := newEnv(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 1 {
			close(arrived)
			select {
			case <-release:
			case <-time.After(250 * time.Millisecond): // within the sender's timeout
			}
		}
		return false // answered as usual: 2xx
	})
	e.partner("p", rc, profiles.FieldName)
	u := e.user(`{"name":"Ann","consents":{"syndication":true},"visibility":{"name":"public"}}`)
	e.worker()
	<-arrived
	kv, err := e.conn.JS.KeyValue(e.ctx, bus.BucketSyndState)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(e.ctx, "p."+u.ID, []byte(`{"v":0,"holds":true,"type":"moved","id":"elsewhere"}`)); err != nil {
		t.Fatal(err)
	}
	close(release)
	eventually(t, 10*time.Second, "the answer and the resend's logged", func() (bool, string) {
		ds, err := e.led.ForUser(e.ctx, u.ID, 100)
		return err == nil && len(ds) == 2, "entries: " + string(must(json.Marshal(ds)))
	})
	ds, _ := e.led.ForUser(e.ctx, u.ID, 100)
	if ds[0].WebhookID != ds[1].WebhookID || ds[0].Outcome != syndication.OutcomeDelivered || ds[1].Outcome != syndication.OutcomeDelivered {
		t.Errorf("log %+v: want the same delivery twice, both delivered", ds)
	}
	// The first answer was written on the state the test left.
	e1, err := kv.GetRevision(e.ctx, "p."+u.ID, ds[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	if err := json.Unmarshal(e1.Value(), &s); err != nil || s.Type != "moved" || s.ID != "elsewhere" {
		t.Errorf("the first answer's revision %s: want the state the test wrote, with the entry", e1.Value())
	}
}

// Each answer goes on the log as soon as it comes, not when the task's other
// users are done: a process killed in the middle of a task leaves the
// answers it got logged. One task for three changed users, queued as the
// fan-out queues a burst: while its third request is held, the first two
// answers must be on the log.
func TestAnswerLoggedBeforeTheTaskEnds(t *testing.T) {
	e := newEnv(t)
	var hold atomic.Int64 // the request to hold
	seen := make(chan int, 1)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if int64(n) == hold.Load() {
			logged := 0
			for end := time.Now().Add(250 * time.Millisecond); logged < 5 && time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
				if ds, _, err := e.led.ForPartner(e.ctx, "p", 0, 100); err == nil {
					logged = len(ds)
				}
			}
			seen <- logged
		}
		return false
	})
	e.partner("p", rc, profiles.FieldName)
	var users []*profiles.Profile
	created := 0
	for len(users) < 3 { // in one shard, so in one task
		u := e.user(`{"name":"Ann","consents":{"syndication":true},"visibility":{"name":"public"}}`)
		created++
		if len(users) == 0 || xxhash.Sum64String(u.ID)%4 == xxhash.Sum64String(users[0].ID)%4 { // the harness's 4 shards
			users = append(users, u)
		}
	}
	stop := e.worker()
	eventually(t, 10*time.Second, "every user delivered once and logged", func() (bool, string) {
		ds, _, err := e.led.ForPartner(e.ctx, "p", 0, 100)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return err == nil && len(ds) == created && rc.n == created, fmt.Sprintf("%d requests, %d logged, %d users", rc.n, len(ds), created)
	})
	stop()
	batch := map[string][]map[string]any{}
	for _, u := range users {
		e.patch(u.ID, `{"name":"Bea"}`)
		batch["b"] = append(batch["b"], map[string]any{"u": u.ID, "v": 0})
	}
	rc.mu.Lock()
	hold.Store(int64(rc.n + 3))
	rc.mu.Unlock()
	shard := xxhash.Sum64String(users[0].ID) % 4
	if _, err := e.conn.JS.Publish(e.ctx, fmt.Sprintf("adsyn.synd.out.p.%d", shard), must(json.Marshal(batch))); err != nil {
		t.Fatal(err)
	}
	before, _, err := e.led.ForPartner(e.ctx, "p", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	e.worker()
	select {
	case logged := <-seen:
		if logged < len(before)+2 {
			t.Fatalf("while the task's third request was out, %d answers were on the log, want %d and the two given since", logged, len(before))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no third request")
	}
}
