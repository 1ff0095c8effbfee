package bus_test

import (
	"context"
	"sync"
	"testing"
	"time"

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

func TestPublisherCountsDropsWhenNATSIsAway(t *testing.T) {
	srv := bustest.StartServer(t)
	c := srv.Connect(t)
	p, err := bus.NewPublisher(c.NC, bus.PublisherOptions{AckTimeout: 200 * time.Millisecond, MaxAttempts: 2, QueueLen: 4, BatchEvents: 10})
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = p.Stop(ctx)
	st := p.Stats()
	if st.Acked+st.Dropped != n || st.Dropped == 0 || st.Inflight != 0 {
		t.Fatalf("stats %+v: every event must be acked or counted dropped", st)
	}
}
