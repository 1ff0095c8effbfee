package syndication_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

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
