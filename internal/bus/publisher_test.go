package bus_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
)

func TestPublisherDeliversEveryEventOnce(t *testing.T) {
	c := bustest.Start(t)
	p, err := bus.NewPublisher(c.NC, bus.PublisherOptions{BatchEvents: 64})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 2500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			visitors := []string{"va", "vb", "vc", "vd", "ve"}
			for i := range each {
				e := event.Event{ID: event.NewID(), TS: int64(i), Kind: event.KindPageview, Site: "s1",
					Visitor: visitors[(w+i)%len(visitors)], Consent: consent.All}
				if i%3 == 0 {
					e.Kind = event.KindSearch
				}
				if !p.Publish(&e) {
					t.Error("publish dropped under normal load")
					return
				}
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Acked != workers*each || st.Dropped != 0 || st.Inflight != 0 {
		t.Fatalf("stats %+v, want %d acked and none dropped", st, workers*each)
	}
	ids := map[event.ID]bool{}
	perVisitorTS := map[string]int64{}
	n, err := bus.ReadEvents(ctx, c.JS, 1, func(seq uint64, e *event.Event) error {
		if ids[e.ID] {
			t.Errorf("event %s stored twice", e.ID)
		}
		ids[e.ID] = true
		if want := event.Subject(e.Kind, e.Partition(event.DefaultPartitions)); want == "" {
			t.Error("no subject")
		}
		perVisitorTS[e.Visitor]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != workers*each {
		t.Fatalf("stream holds %d events, want %d", n, workers*each)
	}
	if p.Publish(&event.Event{Kind: event.KindPageview}) {
		t.Error("publish after stop accepted")
	}
}

func TestPublisherDropsOnlyPastItsBufferBound(t *testing.T) {
	srv := bustest.StartServer(t)
	c := srv.Connect(t)
	p, err := bus.NewPublisher(c.NC, bus.PublisherOptions{AckTimeout: 200 * time.Millisecond, BufferBytes: 4 << 10, BatchEvents: 10})
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	const n = 500
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			p.Publish(&event.Event{ID: event.NewID(), TS: int64(i), Kind: event.KindPageview})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked while NATS is away")
	}
	// 500 events of some 30 bytes each do not fit in 4 KiB: the rest was
	// dropped as it came, and what fits waits for NATS.
	if st := p.Stats(); st.Dropped == 0 || st.Dropped == n || st.Inflight == 0 {
		t.Fatalf("stats %+v: want some dropped past the bound and some held", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.Stop(ctx); err == nil {
		t.Error("Stop reported success with NATS away")
	}
	st := p.Stats()
	if st.Acked != 0 || st.Dropped != n || st.Inflight != 0 {
		t.Fatalf("stats %+v: every event must be counted dropped", st)
	}
}

// A batch's Nats-Msg-Id is its own: an event id seen before (a replayed
// click's is fixed per token) does not make JetStream discard the batch.
func TestPublisherBatchLedByAStoredIDIsStored(t *testing.T) {
	c := bustest.Start(t)
	replayed := event.NewID()
	for round := range 2 {
		p, err := bus.NewPublisher(c.NC, bus.PublisherOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Publish(&event.Event{ID: replayed, Kind: event.KindClick, Visitor: "v1", Campaign: "c1"})
		if round == 1 {
			for range 10 {
				p.Publish(&event.Event{ID: event.NewID(), Kind: event.KindClick, Visitor: "v1", Campaign: "c1"})
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = p.Stop(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	n, err := bus.ReadEvents(context.Background(), c.JS, 1, func(uint64, *event.Event) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n != 12 {
		t.Fatalf("stream holds %d events, want 12 (the replayed click twice and 10 others)", n)
	}
}

// While the server is away, batches wait and are sent again when it is back:
// nothing is dropped and nothing is stored twice.
func TestPublisherRidesOutAServerRestart(t *testing.T) {
	srv := bustest.StartServer(t)
	c := srv.Connect(t)
	p, err := bus.NewPublisher(c.NC, bus.PublisherOptions{BatchEvents: 50, AckTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	published := 0
	publish := func(k int) {
		for range k {
			p.Publish(&event.Event{ID: event.NewID(), Kind: event.KindPageview, Visitor: "v" + strconv.Itoa(published%7)})
			published++
		}
	}
	publish(1000)
	srv.Shutdown()
	publish(3000)
	waitFor(t, 10*time.Second, "the publisher to hold the events", func() bool { return p.Stats().Inflight > 0 })
	srv.Restart(t)
	publish(1000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Acked != 5000 || st.Dropped != 0 {
		t.Fatalf("stats %+v, want 5000 acknowledged and none dropped", st)
	}
	c2 := srv.Connect(t)
	assertStoredOnce(t, c2, 5000)
}

func assertStoredOnce(t *testing.T, c *bus.Conn, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ids map[event.ID]bool
	read := func() (int, error) {
		ids = map[event.ID]bool{}
		return bus.ReadEvents(ctx, c.JS, 1, func(_ uint64, e *event.Event) error {
			if ids[e.ID] {
				t.Errorf("event %s stored twice", e.ID)
			}
			ids[e.ID] = true
			return nil
		})
	}
	n, err := read()
	// A node just restarted may not answer the JetStream API yet, though it
	// reports healthy: the read starts again.
	for errors.Is(err, nats.ErrNoResponders) && ctx.Err() == nil {
		t.Logf("reading again: %v", err)
		time.Sleep(200 * time.Millisecond)
		n, err = read()
	}
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("stream holds %d events, want %d", n, want)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The node leading ADSYN_EVENTS stops under load and comes back: the
// publisher loses nothing and stores nothing twice.
func TestPublisherRidesOutANodeFailure(t *testing.T) {
	cl := bustest.StartCluster(t, 3)
	c := cl.Connect(t)
	p, err := bus.NewPublisher(c.NC, bus.PublisherOptions{BatchEvents: 20, AckTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var published atomic.Int64
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range 5 {
				p.Publish(&event.Event{ID: event.NewID(), Kind: event.KindPageview, Visitor: "v" + strconv.Itoa(i%13)})
				published.Add(1)
			}
		}
	}()
	waitFor(t, 10*time.Second, "events acknowledged", func() bool { return p.Stats().Acked > 500 })
	leader := cl.Leader(bus.StreamEvents)
	if leader < 0 {
		t.Fatal("no leader of ADSYN_EVENTS")
	}
	cl.Stop(leader)
	before := p.Stats().Acked
	waitFor(t, 30*time.Second, "events acknowledged with a node down", func() bool { return p.Stats().Acked > before+500 })
	cl.Start(leader)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-loaded
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	t.Logf("published %d, acknowledged %d, dropped %d", published.Load(), st.Acked, st.Dropped)
	if st.Dropped != 0 || int64(st.Acked) != published.Load() {
		t.Fatalf("stats %+v, want all %d acknowledged", st, published.Load())
	}
	assertStoredOnce(t, c, int(published.Load()))
}
