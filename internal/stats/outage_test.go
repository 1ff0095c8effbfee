package stats

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/event"
)

// outageServer is a nats-server on a fixed port and store that can be
// stopped and started again, with or without JetStream.
type outageServer struct {
	t    *testing.T
	dir  string
	port int
	srv  *server.Server
}

func (s *outageServer) start(jetStream bool) {
	s.t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: s.port, JetStream: jetStream, StoreDir: s.dir,
		NoSigs: true, NoLog: true, MaxPayload: 8 << 20,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("nats-server did not start")
	}
	s.srv = srv
}

func (s *outageServer) stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// impressionsInEveryPartition returns n impressions of campaign c1 on site
// s1 at ts, at least one in each partition.
func impressionsInEveryPartition(n int, ts int64) []event.Event {
	out := make([]event.Event, n)
	seen := map[int]bool{}
	v := 0
	for i := range out {
		e := &out[i]
		e.ID, e.TS, e.Kind, e.Campaign, e.Creative, e.Site = event.NewID(), ts, event.KindImpression, "c1", "cr1", "s1"
		for {
			v++
			e.Visitor = "v" + strconv.Itoa(v)
			if p := e.Partition(event.DefaultPartitions); !seen[p] || len(seen) == event.DefaultPartitions {
				seen[p] = true
				break
			}
		}
	}
	return out
}

// After an outage, a pull request that no consumer answered (sent while the
// server's consumers were not there yet, as when a cluster comes back before
// its consumers have leaders) must not leave a partition stuck: the
// subscription notices the missing heartbeats and pulls again.
func TestPartitionsResumeAfterUnansweredPulls(t *testing.T) {
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()
	s := &outageServer{t: t, dir: t.TempDir(), port: port}
	s.start(true)
	t.Cleanup(s.stop)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := bus.Connect(ctx, url, "aggregator")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.NC.Close)
	if err := bus.Provision(ctx, conn.JS, bus.DefaultResources()); err != nil {
		t.Fatal(err)
	}
	ts := time.Now().UnixMilli()
	hour := time.UnixMilli(ts)
	campaign, site := Key(ScopeCampaign, "c1", hour), Key(ScopeSite, "s1", hour)
	a := startAggregator(t, conn.JS)
	publishEvents(t, conn.JS, impressionsInEveryPartition(32, ts), 4)
	// 32 impressions at the test CPM of 2.5: 2,500 micros each.
	waitTotals(t, conn.JS, map[string]Counters{
		campaign: {Impressions: 32, SpendMicros: 80000},
		site:     {Impressions: 32, SpendMicros: 80000},
	}, 30*time.Second)

	// The server comes back on its store without JetStream: the aggregator
	// reconnects and each partition sends a pull request that nobody
	// answers. A test subscriber takes them, so we know each was sent.
	s.stop()
	s.start(false)
	watcher, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	var (
		mu     sync.Mutex
		pulled = map[string]bool{}
	)
	sub, err := watcher.Subscribe("$JS.API.CONSUMER.MSG.NEXT."+bus.StreamEvents+".*", func(m *nats.Msg) {
		mu.Lock()
		pulled[m.Subject] = true
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "a pull request from every partition", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(pulled) == event.DefaultPartitions
	})
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	// JetStream is back with the same store, and the connection never
	// dropped: only the subscriptions themselves can notice.
	if err := s.srv.EnableJetStream(&server.JetStreamConfig{StoreDir: s.dir}); err != nil {
		t.Fatal(err)
	}
	publishEvents(t, conn.JS, impressionsInEveryPartition(32, ts), 4)
	waitTotals(t, conn.JS, map[string]Counters{
		campaign: {Impressions: 64, SpendMicros: 160000},
		site:     {Impressions: 64, SpendMicros: 160000},
	}, 40*time.Second)
	if a.Applied() != 64 {
		t.Errorf("applied %d events, want 64", a.Applied())
	}
}

// Two aggregators against a three-node cluster (replicas 3) that goes away
// as a whole and comes back on its stores: every partition resumes, whatever
// a pull request met while the consumers had no leaders yet.
func TestAggregatorsResumeAfterClusterRestart(t *testing.T) {
	c := bustest.StartCluster(t, 3)
	pub := c.Connect(t)
	startAggregator(t, c.Connect(t).JS)
	startAggregator(t, c.Connect(t).JS)
	ts := time.Now().UnixMilli()
	hour := time.UnixMilli(ts)
	campaign, site := Key(ScopeCampaign, "c1", hour), Key(ScopeSite, "s1", hour)
	publishEvents(t, pub.JS, impressionsInEveryPartition(64, ts), 4)
	// 64 impressions at 2,500 micros each.
	waitTotals(t, pub.JS, map[string]Counters{
		campaign: {Impressions: 64, SpendMicros: 160000},
		site:     {Impressions: 64, SpendMicros: 160000},
	}, 60*time.Second)

	for i := range c.Nodes() {
		c.Stop(i)
	}
	for i := range c.Nodes() {
		c.Start(i)
	}
	// On a loaded machine the raft groups take a while to elect leaders.
	healthy, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.WaitHealthy(healthy); err != nil {
		t.Fatal(err)
	}
	// Publishing may meet the stream before it has a leader again.
	waitUntil(t, 2*time.Minute, "the stream to take events again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := pub.JS.Publish(ctx, event.Subject(event.KindPageview, 0), nil)
		return err == nil
	})
	publishEvents(t, pub.JS, impressionsInEveryPartition(64, ts), 4)
	waitTotals(t, pub.JS, map[string]Counters{
		campaign: {Impressions: 128, SpendMicros: 320000},
		site:     {Impressions: 128, SpendMicros: 320000},
	}, 2*time.Minute)
	waitUntil(t, time.Minute, "every stats consumer to be drained", func() bool { return statsDrained(pub.JS) })
}

// statsDrained reports whether every stats consumer of ADSYN_EVENTS has
// nothing left to deliver or to acknowledge.
func statsDrained(js jetstream.JetStream) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pending, err := bustest.Pending(ctx, js, bus.StreamEvents)
	if err != nil {
		return false
	}
	for name, p := range pending {
		if strings.HasPrefix(name, "adsyn_stats") && p != [2]uint64{} {
			return false
		}
	}
	return len(pending) > 0
}
