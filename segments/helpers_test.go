package segments

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

var profile = consent.Set(0).With(consent.StoreOnDevice).With(consent.BuildProfile).With(consent.Personalize)

// publish sends events the way the edge does: one message per kind and
// partition holding a batch.
func publish(tb testing.TB, conn *bus.Conn, events ...event.Event) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type key struct {
		k event.Kind
		p int
	}
	bodies := map[key][]byte{}
	counts := map[key]int{}
	var order []key
	for i := range events {
		e := &events[i]
		if e.ID == (event.ID{}) {
			e.ID = event.NewID()
		}
		k := key{e.Kind, e.Partition(event.DefaultPartitions)}
		if _, ok := bodies[k]; !ok {
			order = append(order, k)
		}
		bodies[k] = e.AppendMsgpack(bodies[k])
		counts[k]++
		if counts[k] == 256 {
			send(ctx, tb, conn, k.k, k.p, bodies[k], counts[k])
			bodies[k], counts[k] = nil, 0
		}
	}
	for _, k := range order {
		if counts[k] > 0 {
			send(ctx, tb, conn, k.k, k.p, bodies[k], counts[k])
		}
	}
}

func send(ctx context.Context, tb testing.TB, conn *bus.Conn, k event.Kind, p int, body []byte, n int) {
	tb.Helper()
	m := &nats.Msg{Subject: event.Subject(k, p), Data: body, Header: nats.Header{event.HeaderCount: {strconv.Itoa(n)}}}
	if _, err := conn.JS.PublishMsg(ctx, m); err != nil {
		tb.Fatalf("publish: %v", err)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startBuilder runs a builder until the test ends.
func startBuilder(tb testing.TB, conn *bus.Conn, live *taxonomy.Live, opts ...BuilderOption) *Builder {
	tb.Helper()
	b, err := NewBuilder(conn, live, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("builder: %v", err)
		}
	})
	select {
	case <-b.Ready():
	case err := <-done:
		tb.Fatalf("builder: %v", err)
	case <-time.After(10 * time.Second):
		tb.Fatal("builder not ready within 10s")
	}
	return b
}

// readRecord reads a record straight from the bucket.
func readRecord(tb testing.TB, conn *bus.Conn, visitor string) (*Record, uint64, bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := conn.JS.KeyValue(ctx, bus.BucketSegments)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := kv.Get(ctx, visitor)
	if err == jetstream.ErrKeyNotFound {
		return nil, 0, false
	}
	if err != nil {
		tb.Fatal(err)
	}
	var r Record
	if err := DecodeRecord(e.Value(), &r); err != nil {
		tb.Fatal(err)
	}
	return &r, e.Revision(), true
}

func now() int64 { return time.Now().UnixMilli() }
