package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication"
	"github.com/adsyn/adsyn/syndication/webhook"
)

// SyndicationOptions size the syndication scenario beyond Options; tests
// shrink it.
type SyndicationOptions struct {
	Users    int // users, each changed once per saturating round (default 4000)
	Partners int // loopback receivers (default 5)
	Shards   int // lanes per partner (default 8)
	// Concurrency is the requests the worker may have in flight to one
	// partner (default 64, syndication's default); the ceiling keeps as
	// many in flight per partner.
	Concurrency int
}

// Syndication measures profile changes delivered as signed webhooks to five
// loopback partners. Saturating rounds (every user changed once, as fast as
// profiles are written) alternate with rounds of its ceiling: signed POSTs of
// a delivery's size straight to the same receivers, with as many in flight
// as the worker may have (its lanes, each delivering several users of a task
// at once), for as long as the round before took; only 2xx
// answers count on both sides. A fixed-rate phase (o.Rate changes/s, default
// 1000) times change to delivery; a change merged into a later version of the
// same user is timed to that version's delivery, and is not lost.
func Syndication(ctx context.Context, o Options, progress io.Writer) (Result, error) {
	o.defaults()
	nats, cleanup, err := startNATS(ctx)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	return runSyndication(ctx, nats.conn, o, SyndicationOptions{}, progress)
}

func runSyndication(ctx context.Context, conn *bus.Conn, o Options, so SyndicationOptions, progress io.Writer) (Result, error) {
	if so.Users <= 0 {
		so.Users = 4000
	}
	if so.Partners <= 0 {
		so.Partners = 5
	}
	if so.Shards <= 0 {
		so.Shards = 8
	}
	if so.Concurrency <= 0 {
		so.Concurrency = 64
	}
	// What the worker may have in flight per partner: each lane delivers up
	// to Concurrency/Shards users at once, and at least one.
	inFlight := so.Shards * max(1, so.Concurrency/so.Shards)
	rate := o.Rate
	if rate <= 0 {
		rate = 1000
	}
	res := Result{Scenario: "syndication", CeilingName: "bare signed POSTs, 2xx", Extra: map[string]any{}}
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
	reg, err := syndication.NewRegistry(ctx, conn.JS, syndication.WithLogger(o.Log), syndication.WithShards(so.Shards),
		syndication.WithKeyring(ring), syndication.WithPrivatePartners(true))
	if err != nil {
		return res, err
	}
	led, err := syndication.NewLedger(ctx, conn.JS, reg)
	if err != nil {
		return res, err
	}
	var runID [4]byte
	_, _ = rand.Read(runID[:])
	tag := hex.EncodeToString(runID[:])
	recv := make([]*syndReceiver, so.Partners)
	for i := range recv {
		if recv[i], err = startSyndReceiver(); err != nil {
			return res, err
		}
		defer recv[i].close()
		url := recv[i].url
		p, err := reg.Create(ctx, &syndication.Spec{ID: fmt.Sprintf("bench%s%d", tag, i), URL: &url, Fields: slices.Clone(profiles.PublicFields)})
		if err != nil {
			return res, err
		}
		key, _ := webhook.ParseSecret(p.Secret)
		recv[i].key = key
	}
	w, err := syndication.NewWorker(ctx, conn.JS, reg, led, syndication.WithLogger(o.Log), syndication.WithPublicURL("http://127.0.0.1"),
		syndication.WithMetrics(mreg), syndication.WithKeyring(ring), syndication.WithPrivatePartners(true),
		syndication.WithPartnerConcurrency(so.Concurrency))
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
	var top atomic.Uint64 // the highest version written so far
	raise := func(v uint64) {
		for old := top.Load(); v > old && !top.CompareAndSwap(old, v); old = top.Load() {
		}
	}

	// Setup: register the users; their first deliveries are measured apart.
	fmt.Fprintf(progress, "syndication: setup: %d users registered, first deliveries to %d partners\n", so.Users, so.Partners)
	ids := make([]string, so.Users)
	start := time.Now()
	if err := syndWrite(ctx, so.Users, 32, func(i int) error {
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
	want := so.Users * so.Partners
	syndWait(ctx, progress, "setup", want, received, start, 60*time.Second)
	res.Extra["first_deliveries_per_s"] = round(float64(min(received(), want))/time.Since(start).Seconds(), 0)
	lost := want - min(received(), want)

	// Saturating rounds, each followed by a ceiling round of the same length.
	var opsRounds, ceilRounds, ratios, cpuRounds, ceilCPURounds []float64
	var natsMsgs uint64 // on adsyn's one connection (store, worker, ledger) during the rounds
	for r := range o.Rounds {
		for _, rc := range recv {
			rc.reset(top.Load())
		}
		start = time.Now()
		cpu0 := cpuTime()
		nats0 := conn.NC.Stats()
		if err := syndWrite(ctx, so.Users, 32, func(i int) error {
			p, err := store.Patch(ctx, ids[i], patch(fmt.Sprintf(`{"name":"Bench User %d (round %d)"}`, i, r)), "bench")
			if err == nil {
				raise(p.Version)
			}
			return err
		}); err != nil {
			return res, err
		}
		syndWait(ctx, progress, "saturating", want, received, start, 60*time.Second)
		elapsed := time.Since(start)
		nats1 := conn.NC.Stats()
		natsMsgs += nats1.InMsgs + nats1.OutMsgs - nats0.InMsgs - nats0.OutMsgs
		got := min(received(), want)
		cpu := cpuTime() - cpu0
		lost += want - got
		res.Ops += int64(got)
		t := float64(got) / elapsed.Seconds()
		cpu0 = cpuTime()
		c, posts := syndCeiling(ctx, recv, so.Partners*inFlight, elapsed)
		ccpu := cpuTime() - cpu0
		// CPU per op (the whole process: NATS, receivers and the profile
		// writes included) holds up better than throughput on shared cores.
		fmt.Fprintf(progress, "  round %d/%d: %d deliveries in %v: %.0f/s, %.0f µs CPU each; ceiling %.0f signed POSTs/s answered 2xx, %.0f µs CPU each (%.2f)\n",
			r+1, o.Rounds, got, elapsed.Round(time.Millisecond), t, perOp(cpu, got), c, perOp(ccpu, posts), t/c)
		opsRounds, ceilRounds, ratios = append(opsRounds, t), append(ceilRounds, c), append(ratios, t/c)
		cpuRounds, ceilCPURounds = append(cpuRounds, perOp(cpu, got)), append(ceilCPURounds, perOp(ccpu, posts))
	}
	res.OpsPerS, res.Ceiling, res.Ratio = median(opsRounds), median(ceilRounds), median(ratios)
	res.Extra["rounds"] = ratios
	res.Extra["cpu_us_per_delivery"] = round(median(cpuRounds), 0)
	res.Extra["ceiling_cpu_us_per_post"] = round(median(ceilCPURounds), 0)
	res.Extra["users"] = so.Users
	res.Extra["partners"] = so.Partners
	res.Extra["in_flight_per_partner"] = inFlight
	// Messages in and out per delivery, every user's change and its acks
	// included: what the data model costs in NATS (the ceiling sends none).
	res.Extra["nats_msgs_per_delivery"] = round(float64(natsMsgs)/float64(max(res.Ops, 1)), 2)

	// Fixed rate: profile changes at rate, open loop; each change is timed
	// from its scheduled time to the first delivery of its version or a later
	// one of the same user at each partner.
	for _, rc := range recv {
		rc.reset(top.Load())
	}
	d := o.Duration / 2
	n := int(rate * d.Seconds())
	fmt.Fprintf(progress, "syndication: fixed rate: %.0f changes/s for %v\n", rate, d)
	type change struct {
		user    string
		version uint64
		at      time.Time
	}
	var (
		mu      sync.Mutex
		changes = make([]change, 0, n)
		wg      sync.WaitGroup
		failed  atomic.Pointer[error]
		sem     = make(chan struct{}, 64)
	)
	interval := time.Duration(float64(time.Second) / rate)
	start = time.Now()
	fixedCPU0 := cpuTime()
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
				failed.Store(&err)
				return
			}
			mu.Lock()
			changes = append(changes, change{p.ID, p.Version, at})
			mu.Unlock()
		}(i, at)
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return res, *e
	}
	// Writes that fall behind the schedule show up as latency too: say so.
	written := time.Since(start)
	fmt.Fprintf(progress, "syndication: fixed rate: %d changes written in %v (scheduled over %v)\n", len(changes), written.Round(time.Millisecond), d)
	res.Extra["fixed_rate_written_s"] = round(written.Seconds(), 3)
	// What must arrive: each changed user's last version, at every partner.
	last := map[string]uint64{}
	for _, c := range changes {
		last[c.user] = max(last[c.user], c.version)
	}
	for _, rc := range recv {
		rc.expect(last)
	}
	delivered := func() int {
		k := 0
		for _, rc := range recv {
			k += rc.reached()
		}
		return k
	}
	wantLast := len(last) * so.Partners
	syndWait(ctx, progress, "fixed rate", wantLast, delivered, start, d+30*time.Second)
	lost += wantLast - delivered()
	res.Extra["fixed_rate_cpu_us_per_delivery"] = round(perOp(cpuTime()-fixedCPU0, received()), 0)
	h := newHist()
	merged := 0
	for _, rc := range recv {
		byUser := rc.byUser()
		for _, c := range changes {
			at, exact, ok := firstAtLeast(byUser[c.user], c.version)
			if !ok {
				continue // counted in lost when it was the user's last
			}
			if !exact {
				merged++
			}
			_ = h.RecordValue(max(1, at.Sub(c.at).Microseconds()))
		}
	}
	fixed := Phase{Ops: int64(len(changes)), Hist: h, FixedHz: rate}
	res.P50, res.P99, res.P999 = fixed.Quantile(0.50), fixed.Quantile(0.99), fixed.Quantile(0.999)
	res.Lost = int64(lost)
	res.Extra["latency_is"] = "change to delivery at the fixed rate, per partner"
	res.Extra["fixed_rate_hz"] = rate
	res.Extra["fixed_rate_changes"] = len(changes)
	res.Extra["fixed_rate_timed_deliveries"] = h.TotalCount()
	res.Extra["merged_deliveries"] = merged
	fmt.Fprintf(progress, "syndication: change to delivery at %.0f changes/s: p50 %.1f ms, p99 %.1f ms (%d timed, %d merged into a later version)\n",
		rate, res.P50, res.P99, h.TotalCount(), merged)
	var text strings.Builder
	mreg.WriteText(&text)
	for _, line := range strings.Split(text.String(), "\n") {
		if strings.HasPrefix(line, "adsyn_synd_tasks_total") || strings.HasPrefix(line, "adsyn_synd_attempts_total") || strings.HasPrefix(line, "adsyn_synd_leases") || strings.HasPrefix(line, "adsyn_synd_change") {
			fmt.Fprintf(progress, "syndication: %s\n", line)
		}
	}
	return res, nil
}

// perOp is CPU time per operation in microseconds (0 when none, or when
// the platform does not tell).
func perOp(cpu time.Duration, ops int) float64 {
	if ops <= 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(ops)
}

// firstAtLeast returns when the first delivery of version v or later
// arrived, and whether it was v itself.
func firstAtLeast(got []syndGot, v uint64) (at time.Time, exact, ok bool) {
	for _, g := range got {
		if g.version >= v && (!ok || g.at.Before(at)) {
			at, exact, ok = g.at, g.version == v, true
		}
	}
	return at, exact, ok
}

// syndWrite runs fn(0..n-1) on conc goroutines.
func syndWrite(ctx context.Context, n, conc int, fn func(i int) error) error {
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

func syndWait(ctx context.Context, progress io.Writer, phase string, want int, got func() int, start time.Time, limit time.Duration) {
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
