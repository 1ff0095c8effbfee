package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/adserver"
	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/segments"
)

// Ad loads GET /ad on an edge holding 10,000 campaigns, with 1,000,000
// visitor records in adsyn_segments read through the segments store, and
// checks that every served ad's impression event was stored. With
// o.Target the edge is a running adsyn (`serve --roles edge --nats URL`),
// on other cores or another machine, and o.NATS its NATS: the campaigns
// and records are seeded there and its impressions counted there.
func Ad(ctx context.Context, o Options, progress io.Writer) (Result, error) {
	o.defaults()
	var e *adEdge
	var err error
	if o.Target != "" {
		e, err = remoteAdEdge(ctx, o, progress)
	} else {
		e, err = localAdEdge(ctx, o, progress)
	}
	if err != nil {
		return Result{}, err
	}
	defer e.close()
	b := e.bench

	request := func(i uint64, req *fasthttp.Request) {
		var buf [160]byte
		req.SetRequestURIBytes(b.AppendURI(buf[:0], i))
		req.Header.Set("User-Agent", adserver.BenchUserAgent)
		req.Header.Set("Accept-Language", "ru-RU,ru;q=0.9,en;q=0.8")
	}
	first, err := lastSeq(ctx, e.conn)
	if err != nil {
		return Result{}, err
	}
	// The ceiling answers what a served ad looks like, byte for byte.
	sample, err := e.sample(ctx, request)
	if err != nil {
		return Result{}, err
	}
	ceil, err := StartCeiling(Answer(fasthttp.StatusOK, "application/json", sample))
	if err != nil {
		return Result{}, err
	}
	defer ceil.Close()
	var served atomic.Int64
	served.Add(1) // the sample
	answered := func(res *fasthttp.Response) bool {
		switch res.StatusCode() {
		case fasthttp.StatusOK:
			served.Add(1)
			return true
		case fasthttp.StatusNoContent:
			return true
		}
		return false
	}
	target := &Load{Addr: e.addr, Conns: o.Conns, Request: request, OK: answered}
	ceiling := &Load{Addr: ceil.Addr(), Conns: o.Conns, Request: request}
	fmt.Fprintf(progress, "ad: %s in %d rounds, %d connections, against a bare fasthttp ceiling\n", o.Duration, o.Rounds, o.Conns)
	var seq atomic.Uint64
	cmp := Compare(ctx, target, ceiling, o, &seq, progress)
	r := FromComparison("ad", cmp)
	stored, err := e.stored(ctx, first, served.Load())
	if err != nil {
		return r, err
	}
	r.Lost = served.Load() - int64(stored)
	r.Extra["campaigns"] = b.Catalog.Index().Len()
	r.Extra["visitor_records"] = o.visitors()
	r.Extra["visitor_mix"] = "zipf s=1"
	r.Extra["served"] = served.Load()
	r.Extra["impressions_stored"] = stored
	if e.store != nil {
		if hits, misses := e.store.CacheStats(); hits+misses > 0 {
			r.Extra["record_cache_hit_ratio"] = round(float64(hits)/float64(hits+misses), 3)
		}
	}
	return r, nil
}

// adBench sizes the ad scenario; records is the local edge's store, if any.
func (o *Options) adBench(records *segments.KVStore) adserver.BenchOptions {
	bo := adserver.BenchOptions{Campaigns: o.AdCampaigns, Visitors: o.AdVisitors, WriteRecords: true, Zipf: true}
	if records != nil {
		bo.Records = records
	}
	return bo
}

func (o *Options) visitors() int {
	if o.AdVisitors > 0 {
		return o.AdVisitors
	}
	return 1000000
}

// adEdge is the edge under load and the NATS behind it.
type adEdge struct {
	conn  *bus.Conn
	bench *adserver.Bench // the seeded model; its own edge serves only a local run
	addr  string
	store *segments.KVStore // a local run's record store
	pub   *bus.Publisher    // a local run's impressions
	close func()
}

// localAdEdge seeds an embedded NATS and serves the bench's edge on loopback.
func localAdEdge(ctx context.Context, o Options, progress io.Writer) (e *adEdge, err error) {
	nats, cleanup, err := startNATS(ctx)
	if err != nil {
		return nil, err
	}
	e = &adEdge{conn: nats.conn, close: cleanup}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	c := nats.conn
	if e.pub, err = bus.NewPublisher(c.NC, bus.PublisherOptions{}); err != nil {
		return nil, err
	}
	e.store, err = segments.NewKVStore(ctx, c.JS, segments.WithCache(1<<30, 10*time.Minute, time.Minute), segments.WithWarmCache(true))
	if err != nil {
		return nil, err
	}
	e.onClose(e.store.Close)
	fmt.Fprintln(progress, "ad: seeding campaigns and visitor records (this takes a little while)")
	b, err := adserver.SetupBench(ctx, c, o.adBench(e.store), progress, adserver.WithPublisher(e.pub))
	if err != nil {
		return nil, err
	}
	e.bench = b
	e.onClose(b.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := app.NewEdgeServer(func(ctx *fasthttp.RequestCtx) {
		if !b.Edge.Route(ctx) {
			ctx.SetStatusCode(fasthttp.StatusNotFound)
		}
	}, nil)
	go srv.Serve(ln)
	e.onClose(func() { _ = srv.Shutdown() })
	e.addr = ln.Addr().String()
	return e, nil
}

// remoteAdEdge seeds the NATS of a running edge.
func remoteAdEdge(ctx context.Context, o Options, progress io.Writer) (e *adEdge, err error) {
	if o.NATS == "" {
		return nil, errors.New("--target needs --nats, the NATS URL that edge uses: the campaigns and visitor records are seeded there and its impressions counted there")
	}
	u, err := url.Parse(o.Target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--target %q: want the edge's URL, like http://10.0.0.2:8080", o.Target)
	}
	c, err := bus.Connect(ctx, o.NATS, "adsyn bench", bus.WithCredentials(bus.Credentials{NKeyFile: o.NATSNKey}))
	if err != nil {
		return nil, err
	}
	e = &adEdge{conn: c, addr: u.Host, close: c.Close}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if err := bus.Provision(ctx, c.JS, bus.DefaultResources()); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "ad: seeding campaigns and visitor records into %s for %s (this takes a little while)\n", o.NATS, o.Target)
	// The local catalog only tells when the model is in; records are read
	// by the target's own store, so none are kept here.
	b, err := adserver.SetupBench(ctx, c, o.adBench(nil), progress)
	if err != nil {
		return nil, err
	}
	e.bench = b
	e.onClose(b.Close)
	return e, nil
}

func (e *adEdge) onClose(f func()) {
	prev := e.close
	e.close = func() { f(); prev() }
}

// sample returns a served ad; a remote edge gets up to a minute to load
// the campaigns.
func (e *adEdge) sample(ctx context.Context, request Request) ([]byte, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		body, err := sampleAd(e.addr, request)
		if err == nil || e.pub != nil || time.Now().After(deadline) {
			return body, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// stored counts the impressions in ADSYN_EVENTS after first, waiting up
// to 30s for a remote edge's last batches to reach the stream.
func (e *adEdge) stored(ctx context.Context, first uint64, served int64) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if e.pub != nil {
		if err := e.pub.Stop(ctx); err != nil {
			return 0, err
		}
	}
	for {
		stored, err := bus.ReadEvents(ctx, e.conn.JS, first+1, func(_ uint64, ev *event.Event) error {
			if ev.Kind != event.KindImpression {
				return fmt.Errorf("unexpected %s event", ev.Kind)
			}
			return nil
		})
		if err != nil || int64(stored) >= served || e.pub != nil {
			return stored, err
		}
		select {
		case <-ctx.Done():
			return stored, nil // lost counts what never arrived
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// sampleAd fetches served ads until one answers 200 and returns its body.
func sampleAd(addr string, request Request) ([]byte, error) {
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	for i := uint64(1 << 40); i < 1<<40+1000; i++ {
		req.Reset()
		request(i, req)
		req.SetHost(addr)
		req.URI().SetHost(addr)
		if err := fasthttp.DoTimeout(req, res, 5*time.Second); err != nil {
			return nil, err
		}
		if res.StatusCode() == fasthttp.StatusOK {
			return append([]byte(nil), res.Body()...), nil
		}
	}
	return nil, fmt.Errorf("ad: no request of 1000 got an ad")
}

type natsHarness struct {
	conn *bus.Conn
}

// startNATS runs an embedded, provisioned JetStream in a temporary directory.
func startNATS(ctx context.Context) (*natsHarness, func(), error) {
	dir, err := os.MkdirTemp("", "adsyn-bench-")
	if err != nil {
		return nil, nil, err
	}
	e, err := bus.StartEmbedded(dir, "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	c, err := bus.Connect(ctx, e.URL(), "adsyn bench")
	if err == nil {
		err = bus.Provision(ctx, c.JS, bus.DefaultResources())
	}
	if err != nil {
		e.Shutdown()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return &natsHarness{conn: c}, func() {
		c.Close()
		e.Shutdown()
		os.RemoveAll(dir)
	}, nil
}
