package stats

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/event"
)

// Two aggregators against a three-node cluster (replicas 3) while the node
// leading ADSYN_EVENTS is shut down at once and started again under load,
// twice: every event stored is counted exactly once. Each message carries
// one impression of a campaign of its own, so a message lost or counted
// twice shows by name, with its stream sequence.
//
// What it catches: a settle check counting against the state of a node that
// has just started (its copy of a consumer answers "nothing delivered,
// nothing pending" before it runs), and against a checkpoint read from a
// replica that lags, which the mirror below stands for.
func TestAggregatorsCountOnceWhenStreamLeaderFails(t *testing.T) {
	c := bustest.StartCluster(t, 3)
	pub := c.Connect(t)
	laggingMirror(t, pub.JS, 3)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// A short ack wait and pin TTL, so redeliveries and changes of pinned
	// client happen within the outage.
	for i := range 2 {
		startAggregator(t, c.Connect(t).JS, WithAckWait(2*time.Second, 2*time.Second),
			WithLogger(log.With("aggregator", i+1)))
	}
	ts := time.Now().UnixMilli()
	hour := time.UnixMilli(ts)

	var (
		mu     sync.Mutex
		stored = map[int]uint64{} // message number: stream sequence
		sent   atomic.Int64
		next   atomic.Int64 // message numbers
	)
	load := func(stop <-chan struct{}) func() {
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					n := int(next.Add(1))
					seq := publishUntilStored(t, pub.JS, impressionMsg(n, ts))
					mu.Lock()
					stored[n] = seq
					mu.Unlock()
					sent.Add(1)
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		return wg.Wait
	}

	for round := range 2 {
		stop := make(chan struct{})
		wait := load(stop)
		before := sent.Load()
		waitUntil(t, 2*time.Minute, "load to flow", func() bool { return sent.Load() > before+150 })
		n := max(c.Leader(bus.StreamEvents), 0)
		t.Logf("round %d: shutting down %s, leading %s", round+1, c.Nodes()[n].Name, bus.StreamEvents)
		c.Stop(n)
		before = sent.Load()
		waitUntil(t, 2*time.Minute, "events stored with a node down", func() bool { return sent.Load() > before+200 })
		c.Start(n)
		before = sent.Load()
		waitUntil(t, 2*time.Minute, "events stored after the restart", func() bool { return sent.Load() > before+150 })
		close(stop)
		wait()
		healthy, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := c.WaitHealthy(healthy)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}

	mu.Lock()
	want := map[string]Counters{}
	for n := range stored {
		want[Key(ScopeCampaign, "c"+strconv.Itoa(n), hour)] = Counters{Impressions: 1, SpendMicros: 2500}
	}
	want[Key(ScopeSite, "s1", hour)] = Counters{Impressions: int64(len(stored)), SpendMicros: 2500 * int64(len(stored))}
	mu.Unlock()
	// Every consumer drained: nothing left to deliver or to acknowledge.
	waitUntil(t, 2*time.Minute, "every stats consumer to be drained", func() bool { return statsDrained(pub.JS) })
	var got map[string]Counters
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		got, err = readRecords(t, pub.JS)
		if err == nil && len(got) == len(want) && got[Key(ScopeSite, "s1", hour)] == want[Key(ScopeSite, "s1", hour)] {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	bad := 0
	mu.Lock()
	defer mu.Unlock()
	for n, seq := range stored {
		k := Key(ScopeCampaign, "c"+strconv.Itoa(n), hour)
		if got[k] != want[k] {
			bad++
			e := impressionEvent(n, ts)
			p := e.Partition(event.DefaultPartitions)
			t.Errorf("message %d (stream sequence %d, partition %d): counted %+v, want %+v", n, seq, p, got[k], want[k])
			dumpLines(t, logs.String(), "partition="+strconv.Itoa(p)+" ")
		}
	}
	if s := Key(ScopeSite, "s1", hour); got[s] != want[s] {
		t.Errorf("%s: counted %+v, want %+v", s, got[s], want[s])
	}
	t.Logf("%d messages stored, %d counted wrong; settle checks that met a consumer state not from its leader: %d",
		len(stored), bad, strings.Count(logs.String(), "consumer state not from its leader"))
}

// laggingMirror makes a mirror of the stats bucket without the checkpoints.
// A mirror answers direct gets for the stream it mirrors, as every replica
// does: this one stands for a replica that never caught up.
func laggingMirror(t *testing.T, js jetstream.JetStream, replicas int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     "STATS_LAGGING_MIRROR",
		Replicas: replicas,
		Mirror: &jetstream.StreamSource{
			Name: bus.KVStream(bus.BucketStats),
			// Records, not checkpoints (agg.<consumer>.p<N>) nor members.
			FilterSubject: "$KV." + bus.BucketStats + ".camp.>",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func impressionEvent(n int, ts int64) event.Event {
	return event.Event{
		ID: event.NewID(), TS: ts, Kind: event.KindImpression,
		Campaign: "c" + strconv.Itoa(n), Creative: "cr1", Site: "s1", Visitor: "v" + strconv.Itoa(n),
	}
}

// impressionMsg is message n: one impression of campaign c<n>, with an id
// of its own so that publishing it again stores it once.
func impressionMsg(n int, ts int64) *nats.Msg {
	e := impressionEvent(n, ts)
	m := nats.NewMsg(event.Subject(e.Kind, e.Partition(event.DefaultPartitions)))
	m.Data = e.AppendMsgpack(nil)
	m.Header.Set(jetstream.MsgIDHeader, e.ID.String())
	m.Header.Set(event.HeaderCount, "1")
	return m
}

// publishUntilStored publishes m until the stream acknowledges it and
// returns its sequence: one whose answer was lost is stored once all the
// same, by its id.
func publishUntilStored(t *testing.T, js jetstream.JetStream, m *nats.Msg) uint64 {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ack, err := js.PublishMsg(ctx, m)
		cancel()
		if err == nil {
			if ack.Duplicate {
				// Stored by an earlier try whose answer was lost.
				t.Logf("message %s stored by an earlier try, sequence %d", m.Header.Get(jetstream.MsgIDHeader), ack.Sequence)
			}
			return ack.Sequence
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func dumpLines(t *testing.T, logs, substr string) {
	var out strings.Builder
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, substr) && !strings.Contains(line, "level=DEBUG msg=\"stats flush\"") {
			fmt.Fprintln(&out, line)
		}
	}
	t.Log("log lines of the partition:\n" + out.String())
}
