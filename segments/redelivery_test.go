package segments

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// A message redelivered while its first delivery still waits in the batch
// (here: a batch window three times the ack wait; in production, a flush
// held up by a NATS failover) is applied once. Seen in the cluster fault
// test before the fix: records counted such events twice.
func TestRedeliveredWithinABatchCountsOnce(t *testing.T) {
	conn := bustest.Start(t)
	startBuilder(t, conn, taxonomy.NewLive(nil), WithTakeover(time.Second), WithWindow(3*time.Second, 1<<20))
	ts := now()
	publish(t, conn,
		event.Event{Kind: event.KindPageview, TS: ts, Visitor: "v1", Consent: profile, URL: "https://market.example/a"},
		event.Event{Kind: event.KindPageview, TS: ts + 1, Visitor: "v1", Consent: profile, URL: "https://market.example/b"},
		event.Event{Kind: event.KindPageview, TS: ts + 2, Visitor: "v1", Consent: profile, URL: "https://market.example/c"},
	)
	e := event.Event{Visitor: "v1"}
	name := fmt.Sprintf("segments_p%d", e.Partition(event.DefaultPartitions))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var redelivered uint64
	eventually(t, 20*time.Second, "the record written and its message acknowledged", func() bool {
		_, _, ok := readRecord(t, conn, "v1")
		c, err := conn.JS.Consumer(ctx, bus.StreamEvents, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		redelivered = info.Delivered.Consumer - info.Delivered.Stream
		return ok && info.NumAckPending == 0 && info.NumPending == 0
	})
	if redelivered == 0 {
		t.Fatal("the message was never redelivered: the case was not exercised")
	}
	r, _, _ := readRecord(t, conn, "v1")
	if r.Events != 3 {
		t.Fatalf("record has %d events after %d redeliveries, want 3", r.Events, redelivered)
	}
}
