package stats

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/stats/tally"
)

// BenchOptions size `adsyn bench stats`.
type BenchOptions struct {
	Events     int     // impression and click events to aggregate (default 1,000,000)
	Campaigns  int     // default 1,000, three creatives each
	Sites      int     // default 100, two slots each
	Visitors   int     // default 100,000
	Hours      int     // events spread over this many past hours (default 3)
	ClickRate  float64 // share of clicks among the events (default 0.1)
	QueryDays  int     // span of the hourly query (default 30)
	Queries    int     // timed queries (default 200)
	Partitions int     // default event.DefaultPartitions
	Log        *slog.Logger
}

func (o *BenchOptions) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Events, 1_000_000)
	def(&o.Campaigns, 1000)
	def(&o.Sites, 100)
	def(&o.Visitors, 100_000)
	def(&o.Hours, 3)
	def(&o.QueryDays, 30)
	def(&o.Queries, 200)
	def(&o.Partitions, event.DefaultPartitions)
	if o.ClickRate <= 0 || o.ClickRate >= 1 {
		o.ClickRate = 0.1
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// BenchResult holds the figures of one run.
type BenchResult struct {
	Events         int64   // published and acknowledged by JetStream
	Counted        int64   // found in the records afterwards
	Lost           int64   // Events - Counted
	Seconds        float64 // from the aggregator's start until every event was applied
	EventsPerS     float64
	PublishPerS    float64 // the load generator's publishing rate, for scale
	RecordWrites   int     // hourly record writes (one record is written once per flush it changes in)
	Flushes        uint64
	QueryHours     int
	QueryRecords   int
	Queries        int
	QueryP50Ms     float64
	QueryP99Ms     float64
	QueryMaxMs     float64
	QueryBodyBytes int
}

const benchCPM = 2.0

// RunBench measures the aggregator's throughput on conn (publish Events
// impression and click events, run an aggregator of its own from the
// stream's current end until all are applied, check the records hold every
// one) and the stats API answering an hourly query over QueryDays. Campaign
// and site ids are fresh per run; the run's consumers and a temporary admin
// key are removed at the end, its records stay.
func RunBench(ctx context.Context, conn *bus.Conn, opts BenchOptions, progress io.Writer) (BenchResult, error) {
	opts.defaults()
	if progress == nil {
		progress = io.Discard
	}
	var res BenchResult
	var rid [4]byte
	_, _ = crand.Read(rid[:])
	run := "b" + hex.EncodeToString(rid[:])
	stream, err := conn.JS.Stream(ctx, bus.StreamEvents)
	if err != nil {
		return res, fmt.Errorf("stats bench: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("stats bench: %w", err)
	}
	startSeq := info.State.LastSeq + 1

	fmt.Fprintf(progress, "stats: publishing %d events (%d campaigns, %d sites, %d hours)\n", opts.Events, opts.Campaigns, opts.Sites, opts.Hours)
	pubStart := time.Now()
	acked, err := benchPublish(ctx, conn, run, &opts)
	if err != nil {
		return res, err
	}
	res.Events = int64(acked)
	res.PublishPerS = float64(acked) / time.Since(pubStart).Seconds()
	fmt.Fprintf(progress, "stats: published %d events at %.0f/s\n", acked, res.PublishPerS)

	agg, err := New(conn.JS, WithConsumer("bench_"+run), WithStartSequence(startSeq), WithPartitions(opts.Partitions),
		WithCPM(func(string) (float64, bool) { return benchCPM, true }), WithLogger(opts.Log))
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	if err := agg.Start(ctx); err != nil {
		return res, err
	}
	cleanup := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = agg.Stop(cctx)
		for p := range opts.Partitions {
			_ = stream.DeleteConsumer(cctx, agg.ConsumerName(p))
			_ = agg.kv.Purge(cctx, agg.checkpointKey(p))
		}
	}
	deadline := time.Now().Add(time.Minute + time.Duration(opts.Events/10_000)*time.Second)
	last := time.Now()
	for agg.Applied() < uint64(acked) {
		if err := ctx.Err(); err != nil {
			cleanup()
			return res, err
		}
		if time.Now().After(deadline) {
			break
		}
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			fmt.Fprintf(progress, "stats: applied %d of %d\n", agg.Applied(), acked)
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.Seconds = time.Since(t0).Seconds()
	res.EventsPerS = float64(agg.Applied()) / res.Seconds
	res.Flushes = agg.m.flushes.Load()
	res.RecordWrites = int(agg.m.writes.Load())
	cleanup()
	fmt.Fprintf(progress, "stats: aggregated %d events in %.2fs: %.0f events/s\n", agg.Applied(), res.Seconds, res.EventsPerS)

	counted, err := benchCount(ctx, conn.JS, run, &opts)
	if err != nil {
		return res, err
	}
	res.Counted = counted
	res.Lost = res.Events - counted

	if err := benchQuery(ctx, conn, run, &opts, &res, progress); err != nil {
		return res, err
	}
	return res, nil
}

func benchIDs(run string, n int, kind string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = run + kind + strconv.Itoa(i)
	}
	return out
}

func benchPublish(ctx context.Context, conn *bus.Conn, run string, o *BenchOptions) (uint64, error) {
	pub, err := bus.NewPublisher(conn.NC, bus.PublisherOptions{Partitions: o.Partitions, Log: o.Log})
	if err != nil {
		return 0, fmt.Errorf("stats bench: publisher: %w", err)
	}
	camps, sites := benchIDs(run, o.Campaigns, "c"), benchIDs(run, o.Sites, "s")
	creatives := make([][3]string, o.Campaigns)
	for i, c := range camps {
		for j := range 3 {
			creatives[i][j] = c + "-" + strconv.Itoa(j)
		}
	}
	visitors := benchIDs("v", o.Visitors, "")
	langs := []string{"en", "ru", "de", "fr", "es", "it", "pl", "tr"}
	countries := []string{"RU", "DE", "US", "FR", "ES", "IT", "PL", "TR", "GB", "NL", "UA", "KZ", "BY", "AT", "CH", "BE", "SE", "NO", "FI", "CZ"}
	devices := []string{"desktop", "mobile", "tablet", "tv"}
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	var e event.Event
	for i := range o.Events {
		if i%4096 == 0 {
			if ctx.Err() != nil {
				break
			}
			for pub.Stats().Inflight > 200_000 {
				time.Sleep(time.Millisecond) // the generator outruns NATS: wait, do not drop
			}
		}
		e = event.Event{ID: event.NewID(), Kind: event.KindImpression}
		if r.Float64() < o.ClickRate {
			e.Kind = event.KindClick
		}
		c := r.IntN(o.Campaigns)
		e.Campaign, e.Creative = camps[c], creatives[c][r.IntN(3)]
		e.Site = sites[r.IntN(o.Sites)]
		e.Slot = "top"
		if r.IntN(2) == 1 {
			e.Slot = "side"
		}
		e.Visitor = visitors[r.IntN(o.Visitors)]
		e.Lang, e.Country = langs[r.IntN(len(langs))], countries[r.IntN(len(countries))]
		e.Device.Type = devices[r.IntN(len(devices))]
		e.TS = now.Add(-time.Duration(r.Int64N(int64(o.Hours) * int64(time.Hour)))).UnixMilli()
		if e.Kind == event.KindImpression && r.IntN(2) == 0 {
			e.Value = 0.002
		}
		for !pub.Publish(&e) {
			return 0, errors.New("stats bench: the publisher dropped events")
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := pub.Stop(sctx); err != nil {
		return 0, fmt.Errorf("stats bench: publish: %w", err)
	}
	st := pub.Stats()
	if st.Dropped > 0 {
		return st.Acked, fmt.Errorf("stats bench: %d events dropped while publishing", st.Dropped)
	}
	return st.Acked, nil
}

// benchCount sums impressions and clicks of the run's campaigns, and checks
// its sites agree.
func benchCount(ctx context.Context, js jetstream.JetStream, run string, o *BenchOptions) (int64, error) {
	kv, err := js.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		return 0, err
	}
	now := time.Now().Unix() / 3600
	from, to := now-int64(o.Hours)-1, now+2
	sum := func(s Scope, ids []string) (int64, error) {
		var (
			mu    sync.Mutex
			total int64
			first error
			wg    sync.WaitGroup
			next  = make(chan string)
		)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range next {
					recs, err := readRange(ctx, kv, s, id, from, to, 0)
					mu.Lock()
					if err != nil && first == nil {
						first = err
					}
					for _, r := range recs {
						total += r.Totals.Impressions + r.Totals.Clicks
					}
					mu.Unlock()
				}
			}()
		}
		for _, id := range ids {
			next <- id
		}
		close(next)
		wg.Wait()
		return total, first
	}
	camps, err := sum(ScopeCampaign, benchIDs(run, o.Campaigns, "c"))
	if err != nil {
		return 0, err
	}
	sites, err := sum(ScopeSite, benchIDs(run, o.Sites, "s"))
	if err != nil {
		return 0, err
	}
	if sites != camps {
		return camps, fmt.Errorf("stats bench: campaigns count %d events, sites %d", camps, sites)
	}
	return camps, nil
}

// benchRecord is a realistic hour of a busy campaign.
func benchRecord(r *rand.Rand) *Record {
	rec := &Record{Seq: make([]uint64, event.DefaultPartitions)}
	add := func(d Dim, vals []string) {
		rec.Dims[d] = map[string]Counters{}
		left := rec.Totals
		for i, v := range vals {
			c := Counters{Impressions: left.Impressions / 2, Clicks: left.Clicks / 2, SpendMicros: left.SpendMicros / 2}
			if i == len(vals)-1 {
				c = left
			}
			left.Impressions -= c.Impressions
			left.Clicks -= c.Clicks
			left.SpendMicros -= c.SpendMicros
			rec.Dims[d][v] = c
		}
	}
	rec.Totals = Counters{Impressions: 1000 + r.Int64N(9000), Viewable: 500, Conversions: 3}
	rec.Totals.Clicks = rec.Totals.Impressions / 20
	rec.Totals.SpendMicros = rec.Totals.Impressions * 2000
	for i := range rec.Seq {
		rec.Seq[i] = r.Uint64N(1 << 30)
	}
	add(DimCreative, []string{"cr-1", "cr-2", "cr-3"})
	add(DimSite, benchIDs("site", 50, ""))
	add(DimSlot, []string{"top", "side"})
	add(DimLanguage, []string{"en", "ru", "de", "fr", "es", "it", "pl", "tr"})
	add(DimCountry, benchIDs("C", 20, ""))
	add(DimDevice, []string{"desktop", "mobile", "tablet", "tv"})
	return rec
}

func benchQuery(ctx context.Context, conn *bus.Conn, run string, o *BenchOptions, res *BenchResult, progress io.Writer) error {
	kv, err := conn.JS.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		return err
	}
	id := run + "q"
	hours := o.QueryDays * 24
	now := time.Now().Unix() / 3600
	r := rand.New(rand.NewPCG(3, 4))
	var want Counters
	recs := make([][]byte, hours)
	for i := range recs {
		rec := benchRecord(r)
		want.Add(&rec.Totals)
		recs[i] = rec.AppendMsgpack(nil)
	}
	var wg sync.WaitGroup
	errs := make(chan error, hours)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < hours; i += 16 {
				if _, err := kv.Put(ctx, tally.KeyOf(ScopeCampaign, id, now-int64(hours)+1+int64(i)), recs[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("stats bench: write query records: %w", err)
	}
	res.QueryRecords = hours

	keys, err := auth.NewKeys(ctx, conn.JS, nil)
	if err != nil {
		return err
	}
	secret, p, err := keys.Create(ctx, auth.Admin, "", "stats bench "+run)
	if err != nil {
		return err
	}
	defer func() { _ = keys.Revoke(context.WithoutCancel(ctx), p.KeyID) }()
	h, err := NewHandler(ctx, conn.JS, keys, WithLogger(o.Log))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	h.Routes(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	to := time.Unix((now+1)*3600, 0).UTC()
	from := to.Add(-time.Duration(hours) * time.Hour)
	url := fmt.Sprintf("http://%s/v1/campaigns/%s/stats?by=hour&from=%s&to=%s", ln.Addr(), id, from.Format(time.RFC3339), to.Format(time.RFC3339))
	client := &http.Client{Timeout: 30 * time.Second}
	get := func() (Report, int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := client.Do(req)
		if err != nil {
			return Report{}, 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return Report{}, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return Report{}, 0, fmt.Errorf("stats bench: query: %d %s", resp.StatusCode, body)
		}
		var rep Report
		err = json.Unmarshal(body, &rep)
		return rep, len(body), err
	}
	rep, n, err := get()
	if err != nil {
		return err
	}
	if rep.Totals != MetricsOf(want) || len(rep.Series) != hours {
		return fmt.Errorf("stats bench: query returned %+v over %d points, want %+v over %d", rep.Totals, len(rep.Series), MetricsOf(want), hours)
	}
	res.QueryHours, res.QueryBodyBytes = hours, n
	if progress != nil {
		fmt.Fprintf(progress, "stats: timing %d queries of %d hourly records\n", o.Queries, hours)
	}
	lat := make([]float64, 0, o.Queries)
	for range o.Queries {
		t := time.Now()
		if _, _, err := get(); err != nil {
			return err
		}
		lat = append(lat, float64(time.Since(t).Microseconds())/1000)
	}
	slices.Sort(lat)
	res.Queries = len(lat)
	q := func(f float64) float64 { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	res.QueryP50Ms, res.QueryP99Ms, res.QueryMaxMs = q(0.5), q(0.99), lat[len(lat)-1]
	return nil
}
