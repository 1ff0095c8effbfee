package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/event"
)

// Ad loads GET /ad on the edge that `serve` builds with its default settings
// (the edge role, TCF vendor id set so that TC strings can grant), holding
// 10,000 campaigns and 1,000,000 visitor records in adsyn_segments: 800,000
// written before the edge started, 200,000 after, which its watch caches.
// 20% of requests come from visitors it has never read (their records are
// read from the bucket), the others from a Zipf-like popularity over the
// 200,000. The consent
// signals are a mix (see the result). Only 200s (an ad) count, on both sides:
// the ceiling answers every request with a served ad's bytes. Every served
// ad's impression event must be stored. With o.Target the edge is a running
// adsyn (`serve --roles edge --nats URL --tcf-vendor-id 1001`) and o.NATS
// its NATS: the campaigns and records are seeded there and its impressions
// counted there; its cache is as warm as it is.
func Ad(ctx context.Context, o Options, progress io.Writer) (Result, error) {
	o.defaults()
	campaigns, visitors := o.AdCampaigns, o.AdVisitors
	if campaigns <= 0 {
		campaigns = 10000
	}
	if visitors <= 0 {
		visitors = 1000000
	}
	mix, err := newAdMix(campaigns, visitors)
	if err != nil {
		return Result{}, err
	}
	var e *adEdge
	if o.Target != "" {
		e, err = remoteAdEdge(ctx, o, mix, progress)
	} else {
		e, err = localAdEdge(ctx, o, mix, progress)
	}
	if err != nil {
		return Result{}, err
	}
	defer e.close()

	first, err := lastSeq(ctx, e.conn)
	if err != nil {
		return Result{}, err
	}
	// The ceiling answers what a served ad looks like, byte for byte.
	sample, err := e.sample(ctx, mix.request)
	if err != nil {
		return Result{}, err
	}
	ceil, err := StartCeiling(sample.handler())
	if err != nil {
		return Result{}, err
	}
	defer ceil.Close()
	var served, noFill atomic.Int64
	served.Add(1) // the sample
	target := &Load{Addr: e.addr, Conns: o.Conns, Request: mix.request,
		OK:   func(res *fasthttp.Response) bool { return res.StatusCode() == fasthttp.StatusOK },
		Skip: func(res *fasthttp.Response) bool { return res.StatusCode() == fasthttp.StatusNoContent },
	}
	ceiling := &Load{Addr: ceil.Addr(), Conns: o.Conns, Request: mix.request,
		OK: func(res *fasthttp.Response) bool { return res.StatusCode() == fasthttp.StatusOK }}
	fmt.Fprintf(progress, "ad: %s in %d rounds, %d connections, against a bare fasthttp server answering a served ad\n", o.Duration, o.Rounds, o.Conns)
	var hits0, misses0, late0, shed0 float64
	if e.app != nil {
		hits0, misses0 = recordReads(e.app)
		late0, shed0 = recordsWithout(e.app)
	}
	var seq atomic.Uint64
	cmp := Compare(ctx, target, ceiling, o, &seq, progress)
	r := FromComparison("ad", cmp)
	r.CeilingName = "bare fasthttp, ad bytes"
	addCPU(&r, cmp)
	if o.Rate == 0 {
		adTail(ctx, &r, cmp, target, ceiling, o, &seq, progress)
	}
	served.Add(target.Answered.Load())
	noFill.Add(target.Skipped.Load())
	stored, err := e.stored(ctx, first, served.Load())
	if err != nil {
		return r, err
	}
	r.Lost = served.Load() - int64(stored)
	r.Extra["ops_are"] = "200s (a served ad) on both sides; 204s (no ad) are not counted"
	r.Extra["campaigns"] = campaigns
	r.Extra["visitor_records"] = visitors
	r.Extra["visitor_mix"] = fmt.Sprintf("%d%% visitors the edge never read (%d records written before it started), %d%% zipf s=1 over %d visitors whose records its watch cached",
		adColdPct, visitors-mix.warm, 100-adColdPct, mix.warm)
	r.Extra["consent_mix"] = fmt.Sprintf("%d%% Sec-GPC, %d%% gdpr=1 granting TC string, %d%% gdpr=1 refusing TC string, %d%% no signal outside GDPR scope",
		adGPCPct, adTCGrantPct, adTCRefusePct, 100-adGPCPct-adTCGrantPct-adTCRefusePct)
	r.Extra["served"] = served.Load()
	r.Extra["no_ad_204"] = noFill.Load()
	r.Extra["fill_share"] = round(float64(served.Load())/float64(max(served.Load()+noFill.Load(), 1)), 3)
	r.Extra["impressions_stored"] = stored
	if e.app != nil {
		hits, misses := recordReads(e.app)
		hits, misses = hits-hits0, misses-misses0
		if hits+misses > 0 {
			r.Extra["record_cache_hit_ratio"] = round(hits/(hits+misses), 3)
		}
		// Ads decided without a record the edge did not read in time
		// (failing closed: no capped campaign, no segment exclusion).
		late, shed := recordsWithout(e.app)
		r.Extra["ads_without_record_late"] = late - late0
		r.Extra["ads_without_record_shed"] = shed - shed0
	}
	return r, nil
}

// adTailHz is the rate of the ad server's tail target: p99 within 2× the
// ceiling's, read at 10,000 req/s per edge.
const adTailHz = 10_000

// adTail reads both tails at adTailHz too, after the fixed phase at half
// capacity, so that one run prints the target's own figure. A side that
// cannot keep that rate with a quarter to spare is not loaded at it: the
// tail would be its queue.
func adTail(ctx context.Context, r *Result, cmp Comparison, target, ceiling *Load, o Options, seq *atomic.Uint64, progress io.Writer) {
	key := fmt.Sprintf("tail_at_%d_", adTailHz)
	if slower := min(cmp.Target.OpsPerS, cmp.Ceiling.OpsPerS); slower < 1.25*adTailHz {
		r.Extra[key+"skipped"] = fmt.Sprintf("the slower side answered %.0f req/s, under 1.25× the rate", slower)
		return
	}
	rounds := max(o.Rounds, 1)
	var cseq atomic.Uint64
	_, _, tp99, cp99 := fixedRounds(ctx, target, ceiling, adTailHz, rounds, o.Duration/time.Duration(rounds), seq, &cseq, "", progress)
	t, c := median(tp99), median(cp99)
	r.Extra[key+"p99_rounds_ms"] = roundAll(tp99, 3)
	r.Extra[key+"ceiling_p99_rounds_ms"] = roundAll(cp99, 3)
	r.Extra[key+"p99_median_ms"] = round(t, 3)
	r.Extra[key+"ceiling_p99_median_ms"] = round(c, 3)
	if c > 0 {
		r.Extra[key+"p99_vs_ceiling"] = round(t/c, 2)
	}
}

// recordReads are the visitor record reads answered from the edge's cache
// and those that read the bucket, so far.
func recordReads(a *app.App) (hits, misses float64) {
	return series(a, "adsyn_segments_cache_hits_total"), series(a, "adsyn_segments_cache_misses_total")
}

// recordsWithout are the ads decided so far without the visitor's record:
// not read within the edge's wait, or shed with too many reads in flight.
func recordsWithout(a *app.App) (late, shed float64) {
	return series(a, "adsyn_ad_record_late_total"), series(a, "adsyn_ad_record_shed_total")
}

// series reads one unlabelled series of a's metrics; a name it cannot find
// is a defect of the scenario, not a zero.
func series(a *app.App, name string) float64 {
	var b strings.Builder
	a.Metrics().WriteText(&b)
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	panic("bench: no metric series " + name)
}

// adEdge is the edge under load and the NATS behind it.
type adEdge struct {
	conn  *bus.Conn
	addr  string
	app   *app.App // a local run's
	close func()
}

// adConfig is serve's default configuration on loopback ports in dir,
// with the edge role and the scenario's TCF vendor id.
func adConfig(dir string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTPAddr, cfg.APIAddr, cfg.NATSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Roles = []string{config.RoleEdge}
	cfg.TCFVendorID = adVendorID
	// The load's Zipf visitors ask hundreds of ads a minute: past the
	// visitor ceiling nothing is stored, and the scenario counts stored ads.
	cfg.AdVisitorCeiling = 0
	return cfg
}

// localAdEdge seeds an in-process adsyn, then restarts it on the same data
// so that its record cache is cold.
func localAdEdge(ctx context.Context, o Options, mix *adMix, progress io.Writer) (e *adEdge, err error) {
	dir, err := os.MkdirTemp("", "adsyn-bench-")
	if err != nil {
		return nil, err
	}
	e = &adEdge{close: func() { os.RemoveAll(dir) }}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	fmt.Fprintln(progress, "ad: starting adsyn (edge role, embedded NATS) and seeding it (this takes a little while)")
	seeder, stop, err := startApp(ctx, adConfig(dir), o.Log)
	if err != nil {
		return nil, err
	}
	snap, err := mix.loadModel(ctx, seeder.Conn(), progress)
	if err == nil {
		err = mix.loadRecords(ctx, seeder.Conn(), mix.warm, mix.visitors, progress)
	}
	stop()
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(progress, "ad: restarting adsyn: the records written so far are not in its cache")
	a, stop, err := startApp(ctx, adConfig(dir), o.Log)
	if err != nil {
		return nil, err
	}
	e.onClose(stop)
	e.app, e.conn, e.addr = a, a.Conn(), a.EdgeAddr()
	// The warm visitors' records, written now, reach its cache through its
	// watch, as a builder's writes do.
	if err := mix.loadRecords(ctx, a.Conn(), 0, mix.warm, progress); err != nil {
		return nil, err
	}
	return e, waitCatalog(ctx, a.Conn(), snap)
}

// remoteAdEdge seeds the NATS of a running edge.
func remoteAdEdge(ctx context.Context, o Options, mix *adMix, progress io.Writer) (e *adEdge, err error) {
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
	snap, err := mix.loadModel(ctx, c, progress)
	if err == nil {
		err = mix.loadRecords(ctx, c, 0, mix.visitors, progress)
	}
	if err != nil {
		return nil, err
	}
	return e, waitCatalog(ctx, c, snap)
}

func (e *adEdge) onClose(f func()) {
	prev := e.close
	e.close = func() { f(); prev() }
}

// sample returns a served ad; a remote edge gets up to a minute to load
// the campaigns. The sampling's ads are not in served: only the one kept.
func (e *adEdge) sample(ctx context.Context, request Request) (answer, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		a, _, err := sampleAnswer(e.addr, request, fasthttp.StatusOK)
		if err == nil || e.app != nil || time.Now().After(deadline) {
			return a, err
		}
		select {
		case <-ctx.Done():
			return answer{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// stored counts the impressions in ADSYN_EVENTS after first, waiting up
// to 30s for a remote edge's last batches to reach the stream.
func (e *adEdge) stored(ctx context.Context, first uint64, served int64) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if e.app != nil {
		if err := e.app.Publisher().Stop(ctx); err != nil {
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
		if err != nil || int64(stored) >= served || e.app != nil {
			return stored, err
		}
		select {
		case <-ctx.Done():
			return stored, nil // lost counts what never arrived
		case <-time.After(200 * time.Millisecond):
		}
	}
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
	c, err := bus.Connect(ctx, e.URL(), "adsyn bench", bus.InProcess(e))
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
