package adserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/segments"
)

// BenchOptions size the `adsyn bench ad` scenario.
type BenchOptions struct {
	Campaigns int    // default 10,000
	Visitors  int    // default 1,000,000
	Sites     int    // default 100, two slots each
	Seed      uint64 // of the generated model and traffic
	// Records is the visitor record store the edge reads. Nil: an in-memory
	// store of synthetic records (no I/O). To measure the real store, write
	// the records to adsyn_segments (WriteRecords) and pass segments' store.
	Records      Records
	WriteRecords bool
	// Zipf draws visitors with a Zipf-like (s≈1) popularity, as real traffic
	// has: a few visitors come often, most rarely. Default: uniform.
	Zipf bool
}

func (o *BenchOptions) defaults() {
	if o.Campaigns <= 0 {
		o.Campaigns = 10000
	}
	if o.Visitors <= 0 {
		o.Visitors = 1000000
	}
	if o.Sites <= 0 {
		o.Sites = 100
	}
}

// BenchUserAgent is a browser's User-Agent for load generators: requests
// without one are bots and get no ad (see WithBots).
const BenchUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// Bench is a seeded edge ready for load.
type Bench struct {
	Edge    *Edge
	Catalog *Catalog
	opts    BenchOptions
}

// AppendURI appends the request URI of the i-th request of the traffic mix:
// a site and slot, a visitor among Visitors, and page categories.
func (b *Bench) AppendURI(dst []byte, i uint64) []byte {
	r := splitmix(i ^ b.opts.Seed)
	dst = append(dst, "/ad?site=s"...)
	dst = strconv.AppendUint(dst, r%uint64(b.opts.Sites), 10)
	if r>>8&1 == 0 {
		dst = append(dst, "&slot=top"...)
	} else {
		dst = append(dst, "&slot=side"...)
	}
	dst = append(dst, "&u="...)
	dst = appendVisitor(dst, b.visitor(r>>10))
	dst = append(dst, "&c="...)
	dst = append(dst, benchCats[(r>>40)%uint64(len(benchCats))]...)
	dst = append(dst, ',')
	dst = append(dst, benchCats[(r>>48)%uint64(len(benchCats))]...)
	return append(dst, "&fmt=json"...)
}

// visitor picks the visitor of a request from random bits r.
func (b *Bench) visitor(r uint64) uint64 {
	n := uint64(b.opts.Visitors)
	if !b.opts.Zipf {
		return r % n
	}
	// Log-uniform rank: P(rank <= k) = ln(k)/ln(n), i.e. Zipf with s = 1.
	u := float64(r&(1<<40-1)) / (1 << 40)
	return min(uint64(math.Exp(u*math.Log(float64(n)))), n) - 1
}

// Close stops the catalog.
func (b *Bench) Close() { b.Catalog.Close() }

func appendVisitor(dst []byte, i uint64) []byte {
	dst = append(dst, 'v')
	return strconv.AppendUint(dst, i, 10)
}

// SetupBench seeds opts.Campaigns campaigns (with creatives and opts.Sites
// sites) into adsyn_campaigns, optionally opts.Visitors records into
// adsyn_segments, and returns an edge over them. edgeOpts come after the
// bench's defaults (a random token key, consent to everything, the
// records), so the caller may override them (WithPublisher, WithMetrics…).
func SetupBench(ctx context.Context, conn *bus.Conn, opts BenchOptions, progress io.Writer, edgeOpts ...EdgeOption) (*Bench, error) {
	opts.defaults()
	if progress == nil {
		progress = io.Discard
	}
	st, err := NewStore(ctx, conn.JS)
	if err != nil {
		return nil, err
	}
	snap := BenchSnapshot(opts.Campaigns, opts.Sites, opts.Seed)
	fmt.Fprintf(progress, "adserver: seeding %d campaigns, %d creatives, %d sites\n", len(snap.Campaigns), len(snap.Creatives), len(snap.Sites))
	if err := seedSnapshot(ctx, conn, st, snap); err != nil {
		return nil, err
	}
	if opts.WriteRecords {
		fmt.Fprintf(progress, "adserver: writing %d visitor records to %s\n", opts.Visitors, bus.BucketSegments)
		if err := seedRecords(ctx, conn, opts, progress); err != nil {
			return nil, err
		}
	}
	recs := opts.Records
	if recs == nil {
		recs = newSyntheticRecords(opts.Seed)
	}
	cat, err := NewCatalog(ctx, conn.JS)
	if err != nil {
		return nil, err
	}
	// The catalog may have loaded before the last writes were watched.
	deadline := time.Now().Add(30 * time.Second)
	for cat.Index().Len() < len(snap.Campaigns) {
		if time.Now().After(deadline) {
			cat.Close()
			return nil, errors.New("adserver: bench campaigns did not reach the index within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	all := append([]EdgeOption{
		WithTokenKeys(key),
		WithConsent(func(*fasthttp.RequestCtx) consent.Set { return consent.All }),
		WithSegments(recs),
	}, edgeOpts...)
	edge, err := NewEdge(ctx, cat, all...)
	if err != nil {
		cat.Close()
		return nil, err
	}
	fmt.Fprintf(progress, "adserver: index ready: %d campaigns\n", cat.Index().Len())
	return &Bench{Edge: edge, Catalog: cat, opts: opts}, nil
}

// seedSnapshot writes the model with async publishes: one KV put is one
// message on $KV.<bucket>.<key>.
func seedSnapshot(ctx context.Context, conn *bus.Conn, st *Store, s *Snapshot) error {
	put := func(prefix, id string, v any) error {
		_, err := st.write(ctx, prefix, id, v, false, 0)
		return err
	}
	for _, a := range s.Advertisers {
		if err := put(prefixAdvertiser, a.ID, a); err != nil {
			return err
		}
	}
	for _, si := range s.Sites {
		if err := put(prefixSite, si.ID, si); err != nil {
			return err
		}
	}
	return publishAll(ctx, conn.JS, func(yield func(string, any) bool) {
		for _, c := range s.Campaigns {
			if !yield(key(prefixCampaign, c.ID), c) {
				return
			}
		}
		for _, cr := range s.Creatives {
			if !yield(key(prefixCreative, cr.ID), cr) {
				return
			}
		}
	}, bus.BucketCampaigns)
}

func publishAll(ctx context.Context, js jetstream.JetStream, seq func(func(string, any) bool), bucket string) error {
	var err error
	pending := make([]jetstream.PubAckFuture, 0, 2048)
	wait := func() error {
		for _, f := range pending {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		pending = pending[:0]
		return nil
	}
	seq(func(k string, v any) bool {
		b, ok := v.([]byte)
		if !ok {
			if b, err = json.Marshal(v); err != nil {
				return false
			}
		}
		var f jetstream.PubAckFuture
		if f, err = js.PublishAsync("$KV."+bucket+"."+k, b); err != nil {
			return false
		}
		if pending = append(pending, f); len(pending) == cap(pending) {
			err = wait()
		}
		return err == nil
	})
	if err == nil {
		err = wait()
	}
	if err != nil {
		return fmt.Errorf("adserver: bench seed %s: %w", bucket, err)
	}
	return nil
}

func seedRecords(ctx context.Context, conn *bus.Conn, opts BenchOptions, progress io.Writer) error {
	syn := newSyntheticRecords(opts.Seed)
	var buf []byte
	return publishAll(ctx, conn.JS, func(yield func(string, any) bool) {
		for i := range opts.Visitors {
			id := string(appendVisitor(nil, uint64(i)))
			r := *syn.shape(id)
			r.Visitor = id
			buf = r.AppendMsgpack(buf[:0])
			if !yield(id, append([]byte(nil), buf...)) {
				return
			}
			if i > 0 && i%200000 == 0 {
				fmt.Fprintf(progress, "adserver: %d records\n", i)
			}
		}
	}, bus.BucketSegments)
}

// syntheticRecords answers every visitor with one of a few thousand record
// shapes, without I/O or allocation.
type syntheticRecords struct{ shapes []segments.Record }

func newSyntheticRecords(seed uint64) *syntheticRecords {
	s := &syntheticRecords{shapes: make([]segments.Record, 4096)}
	now := time.Now().UnixMilli()
	for i := range s.shapes {
		s.shapes[i] = benchRecord(splitmix(seed^uint64(i)+1), now)
	}
	return s
}

func (s *syntheticRecords) shape(visitor string) *segments.Record {
	h := uint64(14695981039346656037)
	for i := 0; i < len(visitor); i++ {
		h = (h ^ uint64(visitor[i])) * 1099511628211
	}
	return &s.shapes[h%uint64(len(s.shapes))]
}

// Get implements Records.
func (s *syntheticRecords) Get(_ context.Context, visitor string) (*segments.Record, error) {
	return s.shape(visitor), nil
}
