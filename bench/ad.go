package bench

import (
	"context"
	"fmt"
	"io"
	"net"
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
// checks that every served ad's impression event was stored.
func Ad(ctx context.Context, o Options, progress io.Writer) (Result, error) {
	o.defaults()
	nats, cleanup, err := startNATS(ctx)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	c := nats.conn
	pub, err := bus.NewPublisher(c.NC, bus.PublisherOptions{})
	if err != nil {
		return Result{}, err
	}
	store, err := segments.NewKVStore(ctx, c.JS, segments.WithCache(1<<30, 10*time.Minute, time.Minute), segments.WithWarmCache(true))
	if err != nil {
		return Result{}, err
	}
	defer store.Close()
	fmt.Fprintln(progress, "ad: seeding campaigns and visitor records (this takes a little while)")
	b, err := adserver.SetupBench(ctx, c, adserver.BenchOptions{WriteRecords: true, Records: store, Zipf: true}, progress, adserver.WithPublisher(pub))
	if err != nil {
		return Result{}, err
	}
	defer b.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	srv := app.NewEdgeServer(func(ctx *fasthttp.RequestCtx) {
		if !b.Edge.Route(ctx) {
			ctx.SetStatusCode(fasthttp.StatusNotFound)
		}
	}, nil)
	go srv.Serve(ln)
	defer srv.Shutdown()

	request := func(i uint64, req *fasthttp.Request) {
		var buf [160]byte
		req.SetRequestURIBytes(b.AppendURI(buf[:0], i))
		req.Header.Set("User-Agent", adserver.BenchUserAgent)
		req.Header.Set("Accept-Language", "ru-RU,ru;q=0.9,en;q=0.8")
	}
	first, err := lastSeq(ctx, c)
	if err != nil {
		return Result{}, err
	}
	// The ceiling answers what a served ad looks like, byte for byte.
	sample, err := sampleAd(ln.Addr().String(), request)
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
	target := &Load{Addr: ln.Addr().String(), Conns: o.Conns, Request: request, OK: answered}
	ceiling := &Load{Addr: ceil.Addr(), Conns: o.Conns, Request: request}
	fmt.Fprintf(progress, "ad: %s in %d rounds, %d connections, against a bare fasthttp ceiling\n", o.Duration, o.Rounds, o.Conns)
	var seq atomic.Uint64
	cmp := Compare(ctx, target, ceiling, o, &seq, progress)
	r := FromComparison("ad", cmp)
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pub.Stop(stopCtx); err != nil {
		return r, err
	}
	stored, err := bus.ReadEvents(stopCtx, c.JS, first+1, func(_ uint64, e *event.Event) error {
		if e.Kind != event.KindImpression {
			return fmt.Errorf("unexpected %s event", e.Kind)
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	hits, misses := store.CacheStats()
	r.Lost = served.Load() - int64(stored)
	r.Extra["campaigns"] = b.Catalog.Index().Len()
	r.Extra["visitor_records"] = 1000000
	r.Extra["visitor_mix"] = "zipf s=1"
	r.Extra["served"] = served.Load()
	r.Extra["impressions_stored"] = stored
	if hits+misses > 0 {
		r.Extra["record_cache_hit_ratio"] = round(float64(hits)/float64(hits+misses), 3)
	}
	return r, nil
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
