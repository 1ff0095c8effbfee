package segments

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// A record write sent again (its answer lost) is stored once. A cluster
// checks the write's id first: within the bucket's dedupe window it answers
// with the first write's sequence. One server checks the expected revision
// first, and so does a cluster after the window: the revision is no longer
// the record's, and the write is refused as a conflict (the record is then
// read again, and its applied messages say the events are in).
func TestResentWriteStoredOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		connect func(*testing.T) *bus.Conn
		dupAck  bool // answered as a duplicate within the window
	}{
		{"one server", func(t *testing.T) *bus.Conn { return bustest.Start(t) }, false},
		{"cluster", func(t *testing.T) *bus.Conn { return bustest.StartCluster(t, 3).Connect(t) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := tc.connect(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			b, err := NewBuilder(conn, taxonomy.NewLive(nil))
			if err != nil {
				t.Fatal(err)
			}
			w := newWorker(b, 0, nil)
			rec := Record{Visitor: "v1", LastSeen: 1, Events: 1, Applied: []uint64{7}}
			m := &nats.Msg{Subject: b.subjects + "v1", Data: rec.AppendMsgpack(nil),
				Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: {"0"}, jetstream.MsgIDHeader: {b.writeID + "1"}}}
			first, err := b.js.PublishMsg(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			storedOnce := func(when string) {
				t.Helper()
				st, err := conn.JS.Stream(ctx, "KV_"+bus.BucketSegments)
				if err != nil {
					t.Fatal(err)
				}
				info, err := st.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if info.State.Msgs != 1 || info.State.LastSeq != first.Sequence {
					t.Fatalf("%s: %d messages, last %d; want the first write alone (%d)", when, info.State.Msgs, info.State.LastSeq, first.Sequence)
				}
			}
			again, err := w.resend(m)
			switch {
			case tc.dupAck && (err != nil || again.Sequence != first.Sequence || !again.Duplicate):
				t.Fatalf("sent again within the dedupe window: %+v, %v; want the first write's sequence %d", again, err, first.Sequence)
			case !tc.dupAck && !bus.IsWrongLastSequence(err):
				t.Fatalf("sent again: %+v, %v; want a conflict", again, err)
			}
			storedOnce("within the window")
			st, err := conn.JS.Stream(ctx, "KV_"+bus.BucketSegments)
			if err != nil {
				t.Fatal(err)
			}
			cfg := st.CachedInfo().Config
			if cfg.Duplicates <= ackTimeout {
				t.Fatalf("dedupe window %s: a write unanswered for the ack timeout (%s) is sent again after it", cfg.Duplicates, ackTimeout)
			}
			cfg.Duplicates = 100 * time.Millisecond
			if _, err := conn.JS.UpdateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "the write's id out of the dedupe window", func() bool {
				_, err := w.resend(m)
				return bus.IsWrongLastSequence(err)
			})
			storedOnce("after the window")
		})
	}
}
