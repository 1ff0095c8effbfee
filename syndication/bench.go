package syndication

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/profiles"
)

// BenchOptions sizes RunBench. Zero fields take the defaults.
type BenchOptions struct {
	Changes  int           // users, and profile changes in the saturating phase (default 4000)
	Rate     int           // changes per second in the latency phase (default 1000)
	Duration time.Duration // length of the latency phase (default 5 s)
	Partners int           // loopback receivers (default 5)
	Shards   int           // lanes per partner (default 8)
	Ceiling  time.Duration // length of the ceiling phase (default 2 s)
	Log      *slog.Logger
}

// BenchResult holds the figures; the JSON names follow `adsyn bench --json`.
type BenchResult struct {
	Scenario       string  `json:"scenario"`
	Partners       int     `json:"partners"`
	Changes        int     `json:"changes"`           // saturating phase
	FirstPerS      float64 `json:"first_per_s"`       // first deliveries per second, registering the users
	Ops            int     `json:"ops"`               // deliveries received in the saturating phase
	OpsPerS        float64 `json:"ops_per_s"`         // deliveries per second, saturating
	Rate           int     `json:"latency_rate"`      // changes per second in the latency phase
	LatencyChanges int     `json:"latency_changes"`   // changes made in the latency phase
	P50ms          float64 `json:"p50_ms"`            // change to receipt, at the fixed rate
	P99ms          float64 `json:"p99_ms"`            //
	P999ms         float64 `json:"p999_ms"`           //
	CeilingPerS    float64 `json:"ceiling_ops_per_s"` // signed POSTs per second to the same receivers, no NATS
	Ratio          float64 `json:"ratio"`             // ops_per_s / ceiling_ops_per_s
	Lost           int     `json:"lost"`              // deliveries due but not received by the end
}

// RunBench measures syndication over loopback on conn. Setup registers
// opts.Changes consented users with public fields (their first deliveries,
// the costlier path, are timed as FirstPerS). The saturating phase changes
// every profile once, as fast as possible: deliveries per second. The
// latency phase changes profiles at opts.Rate per second, open loop, timing
// each delivery from its change's scheduled time so a stall is not hidden.
// Every change gives one delivery per partner. It writes users and partners:
// run it against a scratch NATS server. Progress goes to progress.
func RunBench(ctx context.Context, conn *bus.Conn, opts BenchOptions, progress io.Writer) (BenchResult, error) {
	if opts.Changes <= 0 {
		opts.Changes = 4000
	}
	if opts.Rate <= 0 {
		opts.Rate = 1000
	}
	if opts.Duration <= 0 {
		opts.Duration = 5 * time.Second
	}
	if opts.Partners <= 0 {
		opts.Partners = 5
	}
	if opts.Shards <= 0 {
		opts.Shards = 8
	}
	if opts.Ceiling <= 0 {
		opts.Ceiling = 2 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if progress == nil {
		progress = io.Discard
	}
	res := BenchResult{Scenario: "syndication", Partners: opts.Partners, Changes: opts.Changes, Rate: opts.Rate}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	ring, err := keyring.Parse(keyring.NewKeyLine(time.Now()))
	if err != nil {
		return res, err
	}
	store, err := profiles.NewStore(ctx, conn.JS, ring)
	if err != nil {
		return res, err
	}
	mreg := metrics.NewRegistry()
	// The receivers are on loopback.
	wopts := []Option{WithLogger(opts.Log), WithShards(opts.Shards), WithPublicURL("http://127.0.0.1"), WithMetrics(mreg), WithDecoder(store.Decode), WithKeyring(ring), WithPrivatePartners(true)}
	reg, err := NewRegistry(ctx, conn.JS, wopts...)
	if err != nil {
		return res, err
	}
	led, err := NewLedger(ctx, conn.JS, reg)
	if err != nil {
		return res, err
	}

	var run [4]byte
	_, _ = rand.Read(run[:])
	tag := hex.EncodeToString(run[:])
	recv := make([]*benchReceiver, opts.Partners)
	for i := range recv {
		if recv[i], err = startBenchReceiver(); err != nil {
			return res, err
		}
		defer recv[i].close()
	}

	// Ceiling: the same kind of signed POSTs straight to the receivers.
	res.CeilingPerS = benchCeiling(ctx, recv, opts.Partners*opts.Shards, opts.Ceiling)
	fmt.Fprintf(progress, "syndication: ceiling %.0f signed POSTs/s over loopback\n", res.CeilingPerS)
	for _, r := range recv {
		r.reset(0)
	}

	for i, r := range recv {
		url := r.url
		p, err := reg.Create(ctx, &Spec{ID: fmt.Sprintf("bench%s%d", tag, i), URL: &url, Fields: slices.Clone(profiles.PublicFields)})
		if err != nil {
			return res, err
		}
		key, _ := ParseSecret(p.Secret)
		r.key.Store(&key)
	}
	w, err := NewWorker(ctx, conn.JS, reg, led, wopts...)
	if err != nil {
		return res, err
	}
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(ctx) }()
	defer func() { cancel(); <-wdone }()

	patch := func(text string) *profiles.Patch {
		var pt profiles.Patch
		_ = json.Unmarshal([]byte(text), &pt)
		return &pt
	}
	received := func() int {
		n := 0
		for _, r := range recv {
			n += int(r.count.Load())
		}
		return n
	}

	// Setup: register the users; their first deliveries are measured apart.
	fmt.Fprintf(progress, "syndication: setup: %d users registered, first deliveries to %d partners\n", opts.Changes, opts.Partners)
	ids := make([]string, opts.Changes)
	var top atomic.Uint64 // the highest version written so far
	raise := func(v uint64) {
		for o := top.Load(); v > o && !top.CompareAndSwap(o, v); o = top.Load() {
		}
	}
	start := time.Now()
	if err := benchWrite(ctx, opts.Changes, 32, func(i int) error {
		p, err := store.Create(ctx, patch(fmt.Sprintf(`{"name":"Bench User %d","city":"Lyon","competence":["Go","Plumbing"],
			"price":{"amount":"45.50","currency":"EUR"},"language":"fr","consents":{"syndication":true},
			"visibility":{"name":"public","city":"public","competence":"public","price":"public","language":"public"}}`, i)), "bench")
		if err == nil {
			ids[i] = p.ID
			raise(p.Version)
		}
		return err
	}); err != nil {
		return res, err
	}
	want := opts.Changes * opts.Partners
	waitFor(ctx, progress, "setup", want, received, start, 60*time.Second)
	res.FirstPerS = float64(min(received(), want)) / time.Since(start).Seconds()
	res.Lost = want - min(received(), want)
	fmt.Fprintf(progress, "syndication: first deliveries: %.0f/s\n", res.FirstPerS)

	// Saturating phase: every user changes once, as fast as it can be written.
	for _, r := range recv {
		r.reset(top.Load())
	}
	fmt.Fprintf(progress, "syndication: saturating phase: %d profile changes to %d partners\n", opts.Changes, opts.Partners)
	start = time.Now()
	if err := benchWrite(ctx, opts.Changes, 32, func(i int) error {
		p, err := store.Patch(ctx, ids[i], patch(fmt.Sprintf(`{"name":"Bench User %d (saturating)"}`, i)), "bench")
		if err == nil {
			raise(p.Version)
		}
		return err
	}); err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "syndication: %d changes written in %v\n", opts.Changes, time.Since(start).Round(time.Millisecond))
	waitFor(ctx, progress, "saturating", want, received, start, 60*time.Second)
	elapsed := time.Since(start)
	res.Ops = min(received(), want)
	res.OpsPerS = float64(res.Ops) / elapsed.Seconds()
	res.Lost += want - res.Ops
	if res.CeilingPerS > 0 {
		res.Ratio = res.OpsPerS / res.CeilingPerS
	}
	fmt.Fprintf(progress, "syndication: %d deliveries in %v: %.0f/s\n", res.Ops, elapsed.Round(time.Millisecond), res.OpsPerS)

	// Latency phase: profile changes at the fixed rate, open loop; each
	// delivery is timed from its change's scheduled time.
	for _, r := range recv {
		r.reset(top.Load())
	}
	n := int(float64(opts.Rate) * opts.Duration.Seconds())
	res.LatencyChanges = n
	fmt.Fprintf(progress, "syndication: latency phase: %d changes/s for %v\n", opts.Rate, opts.Duration)
	type change struct {
		user    string
		version uint64
	}
	scheduled := make(map[change]time.Time, n)
	var mu sync.Mutex
	interval := time.Second / time.Duration(opts.Rate)
	start = time.Now()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var writeErr atomic.Pointer[error]
	for i := 0; i < n && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, at time.Time) {
			defer func() { <-sem; wg.Done() }()
			p, err := store.Patch(ctx, ids[i%len(ids)], patch(fmt.Sprintf(`{"name":"Bench User %d (change %d)"}`, i%len(ids), i)), "bench")
			if err != nil {
				writeErr.Store(&err)
				return
			}
			mu.Lock()
			scheduled[change{p.ID, p.Version}] = at
			mu.Unlock()
		}(i, at)
	}
	wg.Wait()
	if e := writeErr.Load(); e != nil {
		return res, *e
	}
	want = n * opts.Partners
	waitFor(ctx, progress, "latency", want, received, start, opts.Duration+30*time.Second)
	var lat []time.Duration
	for _, r := range recv {
		for _, g := range r.take() {
			if at, ok := scheduled[change{g.user, g.version}]; ok {
				lat = append(lat, g.at.Sub(at))
			}
		}
	}
	res.Lost += max(0, want-len(lat))
	slices.Sort(lat)
	pct := func(q float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	res.P50ms, res.P99ms, res.P999ms = pct(0.50), pct(0.99), pct(0.999)
	fmt.Fprintf(progress, "syndication: change to receipt at %d changes/s: p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms (%d deliveries)\n",
		opts.Rate, res.P50ms, res.P99ms, res.P999ms, len(lat))
	var text strings.Builder
	mreg.WriteText(&text)
	for _, line := range strings.Split(text.String(), "\n") {
		if strings.HasPrefix(line, "adsyn_synd_tasks_total") || strings.HasPrefix(line, "adsyn_synd_attempts_total") || strings.HasPrefix(line, "adsyn_synd_leases") || strings.HasPrefix(line, "adsyn_synd_change") {
			fmt.Fprintf(progress, "syndication: %s\n", line)
		}
	}
	return res, nil
}

// benchWrite runs fn(0..n-1) on conc goroutines.
func benchWrite(ctx context.Context, n, conc int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil || first.Load() != nil {
					return
				}
				if err := fn(i); err != nil {
					first.Store(&err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return ctx.Err()
}

func waitFor(ctx context.Context, progress io.Writer, phase string, want int, got func() int, start time.Time, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last := time.Now()
	for got() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
		if time.Since(last) >= time.Second {
			last = time.Now()
			fmt.Fprintf(progress, "syndication: %s: %d/%d deliveries (%.0f/s)\n", phase, got(), want, float64(got())/time.Since(start).Seconds())
		}
	}
}

// benchCeiling posts signed bodies to the receivers from conc goroutines for d.
func benchCeiling(ctx context.Context, recv []*benchReceiver, conc int, d time.Duration) float64 {
	key := make([]byte, 32)
	for _, r := range recv {
		r.key.Store(&key)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	body := []byte(`{"type":"profile.upserted","timestamp":"2025-01-01T00:00:00Z","data":{"id":"u_ceiling","version":1,"name":"Bench User","city":"Lyon","competence":["Go","Plumbing"],"price":{"amount":"45.50","currency":"EUR"},"language":"fr"}}`)
	var n atomic.Int64
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := recv[g%len(recv)]
			for cctx.Err() == nil {
				req, _ := http.NewRequestWithContext(cctx, http.MethodPost, r.url, strings.NewReader(string(body)))
				ts := time.Now().Unix()
				req.Header.Set(HeaderID, "msg_ceiling")
				req.Header.Set(HeaderTimestamp, fmt.Sprint(ts))
				req.Header.Set(HeaderSignature, Sign(key, "msg_ceiling", ts, body))
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

type benchGot struct {
	user    string
	version uint64
	at      time.Time
}

// benchReceiver is a loopback partner that verifies signatures and notes
// when each user arrived.
type benchReceiver struct {
	url   string
	srv   *http.Server
	key   atomic.Pointer[[]byte]
	floor uint64 // deliveries of versions at or below it belong to an earlier phase
	count atomic.Int64
	mu    sync.Mutex
	got   []benchGot
	seen  map[string]bool
}

func startBenchReceiver() (*benchReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("syndication: bench receiver: %w", err)
	}
	r := &benchReceiver{url: "http://" + ln.Addr().String() + "/hook", seen: map[string]bool{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *benchReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	key := r.key.Load()
	if err != nil || key == nil || Verify(*key, req.Header, body, time.Now()) != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var env struct {
		Data struct {
			ID      string `json:"id"`
			Version uint64 `json:"version"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &env)
	now := time.Now()
	id := req.Header.Get(HeaderID)
	r.mu.Lock()
	// A partner drops duplicates by webhook-id; a late delivery of an earlier
	// phase's change (a redelivery, say) is not this phase's.
	if !r.seen[id] && env.Data.Version > r.floor {
		r.seen[id] = true
		r.got = append(r.got, benchGot{user: env.Data.ID, version: env.Data.Version, at: now})
		r.count.Add(1)
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// reset starts a phase whose changes all have versions above floor.
func (r *benchReceiver) reset(floor uint64) {
	r.mu.Lock()
	r.got, r.floor = nil, floor
	r.seen = map[string]bool{}
	r.count.Store(0)
	r.mu.Unlock()
}

func (r *benchReceiver) take() []benchGot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *benchReceiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		_ = r.srv.Close()
	}
}
