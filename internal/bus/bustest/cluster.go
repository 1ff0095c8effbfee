package bustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
)

// Cluster is a JetStream cluster of nodes routed to each other, all in this
// process. Clients need its user and password, as a deployment's would, and
// the nodes advertise no client URLs: a client reaches only the URLs it was
// given, so a proxy in front of them can cut it off.
type Cluster struct {
	tb       testing.TB
	name     string
	nodes    []*Node
	user     string
	password string
}

// Node is one server of a Cluster. Its store and ports stay the same across
// Stop and Start, as a machine's would across a restart.
type Node struct {
	Name        string
	Dir         string
	ClientPort  int
	ClusterPort int

	mu  sync.Mutex
	srv *server.Server
}

// StartCluster starts n nodes (3 for replicas 3), waits for a JetStream
// leader and provisions every resource with n replicas; the cluster stops
// with tb.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	var pw [16]byte
	_, _ = rand.Read(pw[:])
	c := &Cluster{tb: tb, name: "adsyn-test", user: "adsyn", password: hex.EncodeToString(pw[:])}
	for i := range n {
		c.nodes = append(c.nodes, &Node{
			Name:        fmt.Sprintf("n%d", i+1),
			Dir:         tb.TempDir(),
			ClientPort:  freePort(tb),
			ClusterPort: freePort(tb),
		})
	}
	tb.Cleanup(func() {
		for i := range c.nodes {
			c.Stop(i)
		}
	})
	for i := range c.nodes {
		c.Start(i)
	}
	conn := c.Connect(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := bus.DefaultResources()
	r.Replicas = n
	var err error
	for {
		// Provisioning fails until the nodes have elected a meta leader, and
		// a request sent before that may go unanswered: each try has its own
		// deadline.
		try, cancelTry := context.WithTimeout(ctx, 5*time.Second)
		err = bus.Provision(try, conn.JS, r)
		cancelTry()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("bustest: provision cluster: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return c
}

// Nodes returns the cluster's nodes.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// URLs returns the client URLs of every node, comma-separated, as --nats takes them.
func (c *Cluster) URLs() string {
	var us []string
	for _, n := range c.nodes {
		us = append(us, "nats://"+hostPort(n.ClientPort))
	}
	return strings.Join(us, ",")
}

// Credentials are the user and password every client of the cluster needs.
func (c *Cluster) Credentials() bus.Credentials {
	return bus.Credentials{User: c.user, Password: c.password}
}

// Connect opens a connection to the cluster, closed with tb.
func (c *Cluster) Connect(tb testing.TB) *bus.Conn {
	tb.Helper()
	return connect(tb, c.URLs(), c.Credentials())
}

// Proxies starts a proxy in front of every node, stopped with tb, and
// returns them with their URLs in the form --nats takes.
func (c *Cluster) Proxies(tb testing.TB) (urls string, proxies []*Proxy) {
	tb.Helper()
	var us []string
	for _, n := range c.nodes {
		p := StartProxy(tb, hostPort(n.ClientPort))
		proxies = append(proxies, p)
		us = append(us, p.URL())
	}
	return strings.Join(us, ","), proxies
}

// Start starts node i on its store and ports; it must not be running.
func (c *Cluster) Start(i int) {
	c.tb.Helper()
	n := c.nodes[i]
	var routes []*url.URL
	for j, o := range c.nodes {
		if j != i {
			routes = append(routes, &url.URL{Scheme: "nats", Host: hostPort(o.ClusterPort)})
		}
	}
	opts := &server.Options{
		ServerName: n.Name,
		Host:       "127.0.0.1",
		Port:       n.ClientPort,
		JetStream:  true,
		StoreDir:   n.Dir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
		Username:   c.user,
		Password:   c.password,
		Cluster: server.ClusterOpts{
			Name:        c.name,
			Host:        "127.0.0.1",
			Port:        n.ClusterPort,
			NoAdvertise: true,
		},
		Routes: routes,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		c.tb.Fatalf("bustest: node %s: %v", n.Name, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(time.Minute) {
		srv.Shutdown()
		c.tb.Fatalf("bustest: node %s did not start within a minute", n.Name)
	}
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
}

// Stop shuts node i down at once, without lame duck mode: for the clients
// and the other nodes this is what a kill -9 looks like. It does nothing
// when the node is not running.
func (c *Cluster) Stop(i int) {
	n := c.nodes[i]
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}

// Running reports whether node i runs.
func (c *Cluster) Running(i int) bool {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv != nil
}

// Leader returns the index of the node leading stream, or -1 when none does.
func (c *Cluster) Leader(stream string) int {
	for i, n := range c.nodes {
		n.mu.Lock()
		srv := n.srv
		n.mu.Unlock()
		if srv == nil {
			continue
		}
		if acc, err := srv.LookupAccount(server.DEFAULT_GLOBAL_ACCOUNT); err == nil && srv.JetStreamIsStreamLeader(acc.Name, stream) {
			return i
		}
	}
	return -1
}

// WaitHealthy waits until every running node reports JetStream healthy (its
// streams and consumers caught up) and ADSYN_EVENTS has a leader, or ctx ends.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		err := c.healthy()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bustest: cluster not healthy: %w (%w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

func (c *Cluster) healthy() error {
	for _, n := range c.nodes {
		n.mu.Lock()
		srv := n.srv
		n.mu.Unlock()
		if srv == nil {
			continue
		}
		if st := srv.Healthz(nil); st.Error != "" {
			return fmt.Errorf("node %s: %s", n.Name, st.Error)
		}
	}
	if c.Leader(bus.StreamEvents) < 0 {
		return errors.New("no leader of " + bus.StreamEvents)
	}
	return nil
}

// Pending returns, for every durable consumer of stream, the messages not
// yet delivered and those delivered but not acknowledged. Ephemeral
// consumers (ordered readers) are left out: nobody works through them.
func Pending(ctx context.Context, js jetstream.JetStream, stream string) (map[string][2]uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("bustest: pending %s: %w", stream, err)
	}
	out := map[string][2]uint64{}
	l := s.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Config.Durable == "" {
			continue
		}
		out[ci.Name] = [2]uint64{ci.NumPending, uint64(ci.NumAckPending)}
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("bustest: pending %s: %w", stream, err)
	}
	return out, nil
}

// PendingAll is Pending for every stream, keyed "stream/consumer".
func PendingAll(ctx context.Context, js jetstream.JetStream) (map[string][2]uint64, error) {
	out := map[string][2]uint64{}
	names := js.StreamNames(ctx)
	var streams []string
	for n := range names.Name() {
		streams = append(streams, n)
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("bustest: streams: %w", err)
	}
	for _, s := range streams {
		p, err := Pending(ctx, js, s)
		if err != nil {
			return nil, err
		}
		for name, n := range p {
			out[s+"/"+name] = n
		}
	}
	return out, nil
}
