package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/trace"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// Request prepares the i-th request of a load (URI and headers); the host is
// set by the load generator.
type Request func(i uint64, req *fasthttp.Request)

// Load is one HTTP load against one address.
type Load struct {
	Addr    string // host:port
	Conns   int
	Request Request
	// OK reports whether a response counts as answered (default: any 2xx).
	OK func(res *fasthttp.Response) bool
	// Skip reports whether a response is answered but not counted, neither
	// as an op nor as an error (the ad's 204: no ad). Default: none.
	Skip func(res *fasthttp.Response) bool
	// Answered counts every answered request of every phase, warm-ups too;
	// Skipped every skipped one.
	Answered, Skipped atomic.Int64
}

// Phase is what one load phase measured.
type Phase struct {
	Ops      int64 // answered requests
	Errors   int64 // transport errors and non-answers
	Elapsed  time.Duration
	Hist     *hdrhistogram.Histogram // microseconds
	OpsPerS  float64
	FixedHz  float64 // the fixed rate, 0 for a saturating phase
	FirstErr string  // the first error seen, for the progress output
	// CPU is the CPU time the whole process used during the phase, load
	// generator included: on shared cores it says what a request costs
	// when throughput says mostly what the neighbours left.
	CPU time.Duration
}

// CPUPerOp is the process's CPU time per answered request, in microseconds.
func (p Phase) CPUPerOp() float64 {
	if p.Ops == 0 {
		return 0
	}
	return float64(p.CPU.Microseconds()) / float64(p.Ops)
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 60_000_000, 3) }

// Quantile returns a latency quantile (0.99 for p99) in milliseconds.
func (p Phase) Quantile(q float64) float64 {
	if p.Hist == nil || p.Hist.TotalCount() == 0 {
		return 0
	}
	return float64(p.Hist.ValueAtQuantile(q*100)) / 1000 // hdrhistogram takes a percentile
}

func (l *Load) client(conns int) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                l.Addr,
		MaxConns:            conns,
		ReadTimeout:         10 * time.Second,
		WriteTimeout:        10 * time.Second,
		MaxIdleConnDuration: time.Minute,
	}
}

func (l *Load) ok(res *fasthttp.Response) bool {
	if l.OK != nil {
		return l.OK(res)
	}
	return res.StatusCode() >= 200 && res.StatusCode() < 300
}

// Saturate sends requests as fast as Conns workers can for d.
func (l *Load) Saturate(ctx context.Context, d time.Duration, seq *atomic.Uint64) Phase {
	return l.run(ctx, d, 0, seq)
}

// Fixed sends requests at hz per second for d, open loop: each request has an
// intended start time, and its latency counts from then when it went out late.
func (l *Load) Fixed(ctx context.Context, d time.Duration, hz float64, seq *atomic.Uint64) Phase {
	return l.run(ctx, d, hz, seq)
}

func (l *Load) run(ctx context.Context, d time.Duration, hz float64, seq *atomic.Uint64) Phase {
	workers := l.Conns
	if hz > 0 {
		// Enough workers (each with its connection) that a slow answer never
		// delays the next send.
		workers = 2 * l.Conns
	}
	c := l.client(workers)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		total    = newHist()
		ops, bad atomic.Int64
		slot     atomic.Int64
		firstErr atomic.Value
	)
	start, cpu0 := time.Now(), cpuTime()
	deadline := start.Add(d)
	var interval time.Duration
	if hz > 0 {
		interval = time.Duration(float64(time.Second) / hz)
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newHist()
			defer func() {
				mu.Lock()
				total.Merge(h)
				mu.Unlock()
			}()
			req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(res)
			for ctx.Err() == nil {
				begin := time.Now()
				if interval > 0 {
					intended := start.Add(time.Duration(slot.Add(1)-1) * interval)
					if !intended.Before(deadline) {
						return
					}
					// Behind schedule (every worker was waiting on answers), the
					// latency counts from the intended start: coordinated omission
					// corrected. On time, it counts from the send, so the
					// client's own timer slack (about 1 ms on Linux) is not
					// charged to the server.
					begin = intended
					if wait := time.Until(intended); wait > 0 {
						time.Sleep(wait)
						begin = time.Now()
					}
				}
				req.Reset()
				l.Request(seq.Add(1)-1, req)
				req.SetHost(l.Addr)
				err := c.DoTimeout(req, res, 10*time.Second)
				if err == nil && l.Skip != nil && l.Skip(res) {
					l.Skipped.Add(1)
					continue
				}
				if err != nil || !l.ok(res) {
					if bad.Add(1) == 1 {
						if err == nil {
							err = fmt.Errorf("status %d", res.StatusCode())
						}
						firstErr.Store(err.Error())
					}
					continue
				}
				ops.Add(1)
				l.Answered.Add(1)
				_ = h.RecordValue(max(1, time.Since(begin).Microseconds()))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	p := Phase{Ops: ops.Load(), Errors: bad.Load(), Elapsed: el, Hist: total, FixedHz: hz, CPU: cpuTime() - cpu0}
	p.OpsPerS = float64(p.Ops) / el.Seconds()
	if e, ok := firstErr.Load().(string); ok {
		p.FirstErr = e
	}
	return p
}

// Comparison is a target measured against its ceiling in the same run.
type Comparison struct {
	Target, Ceiling        Phase   // saturating phases, rounds merged
	TargetFixed, CeilFixed Phase   // fixed-rate phases
	Ratio                  float64 // median over rounds of target/ceiling throughput
	Rounds                 []float64
	FixedP99, CeilFixedP99 []float64 // p99 of each fixed-rate round, ms
	// CPU per answered request of each saturating round, µs (Phase.CPUPerOp).
	CPUPerOp, CeilCPUPerOp []float64
}

// startTrace writes a runtime execution trace to file from now until the
// returned func is called, when on and file is set. The trace shows what the
// Go scheduler and every goroutine did (go tool trace).
func startTrace(file string, on bool, progress io.Writer) (stop func()) {
	if file == "" || !on {
		return func() {}
	}
	f, err := os.Create(file)
	if err == nil {
		err = trace.Start(f)
	}
	if err != nil {
		fmt.Fprintf(progress, "  no trace: %v\n", err)
		return func() {}
	}
	return func() {
		trace.Stop()
		if err := f.Close(); err != nil {
			fmt.Fprintf(progress, "  trace: %v\n", err)
			return
		}
		fmt.Fprintf(progress, "  trace of the first fixed round of the target: %s\n", file)
	}
}

// Compare runs o.Rounds of alternating saturating phases on target and
// ceiling, o.Duration in all for each, then as many fixed-rate phases at
// o.Rate requests per second, or when that is 0 at half the median
// throughput of the slower of the two:
// latency is read at half load of what is measured, not at a rate the
// target cannot keep. seq numbers the target's requests (the ceiling has
// its own).
func Compare(ctx context.Context, target, ceiling *Load, o Options, seq *atomic.Uint64, progress io.Writer) Comparison {
	rounds, rate := max(o.Rounds, 1), o.Rate
	per := o.Duration / time.Duration(rounds)
	var cseq atomic.Uint64
	var cmp Comparison
	var tOps, cOps []float64
	cmp.Target.Hist, cmp.Ceiling.Hist = newHist(), newHist()
	// A short warm-up of both, not counted: connections, pools, JIT of caches.
	warm := min(per/5, time.Second)
	target.Saturate(ctx, warm, seq)
	ceiling.Saturate(ctx, warm, &cseq)
	for r := range rounds {
		c := ceiling.Saturate(ctx, per, &cseq)
		t := target.Saturate(ctx, per, seq)
		fmt.Fprintf(progress, "  round %d/%d: target %.0f req/s, ceiling %.0f req/s (%.2f); CPU per request %.1f µs, ceiling %.1f µs\n",
			r+1, rounds, t.OpsPerS, c.OpsPerS, t.OpsPerS/c.OpsPerS, t.CPUPerOp(), c.CPUPerOp())
		cmp.CPUPerOp, cmp.CeilCPUPerOp = append(cmp.CPUPerOp, t.CPUPerOp()), append(cmp.CeilCPUPerOp, c.CPUPerOp())
		for _, p := range []Phase{t, c} {
			if p.Errors > 0 {
				fmt.Fprintf(progress, "    %d errors, first: %s\n", p.Errors, p.FirstErr)
			}
		}
		tOps, cOps = append(tOps, t.OpsPerS), append(cOps, c.OpsPerS)
		cmp.Rounds = append(cmp.Rounds, t.OpsPerS/c.OpsPerS)
		merge(&cmp.Target, t)
		merge(&cmp.Ceiling, c)
	}
	cmp.Target.OpsPerS, cmp.Ceiling.OpsPerS = median(tOps), median(cOps)
	cmp.Ratio = median(cmp.Rounds)
	hz := rate
	if hz <= 0 {
		hz = min(cmp.Target.OpsPerS, cmp.Ceiling.OpsPerS) / 2
	}
	cmp.TargetFixed, cmp.CeilFixed, cmp.FixedP99, cmp.CeilFixedP99 = fixedRounds(ctx, target, ceiling, hz, rounds, per, seq, &cseq, o.Trace, progress)
	return cmp
}

// fixedRounds runs rounds of per at hz requests per second on ceiling and
// then target, alternating: a pause of the machine (another process, a GC of
// the big cache) then lands on either side. It returns both sides' phases
// and the p99 of each round, ms. traceFile, when set, gets an execution
// trace of the target's first round.
func fixedRounds(ctx context.Context, target, ceiling *Load, hz float64, rounds int, per time.Duration, seq, cseq *atomic.Uint64,
	traceFile string, progress io.Writer) (tf, cf Phase, tp99, cp99 []float64) {
	fmt.Fprintf(progress, "  fixed rate %.0f req/s, %d rounds of %s on each\n", hz, rounds, per)
	tf.Hist, cf.Hist = newHist(), newHist()
	tf.FixedHz, cf.FixedHz = hz, hz
	for r := range rounds {
		c := ceiling.Fixed(ctx, per, hz, cseq)
		stop := startTrace(traceFile, r == 0, progress)
		t := target.Fixed(ctx, per, hz, seq)
		stop()
		fmt.Fprintf(progress, "  fixed round %d/%d: p99 target %.3f ms, ceiling %.3f ms\n", r+1, rounds, t.Quantile(0.99), c.Quantile(0.99))
		tp99, cp99 = append(tp99, t.Quantile(0.99)), append(cp99, c.Quantile(0.99))
		for _, p := range []Phase{t, c} {
			if p.Errors > 0 {
				fmt.Fprintf(progress, "    %d errors, first: %s\n", p.Errors, p.FirstErr)
			}
		}
		merge(&tf, t)
		merge(&cf, c)
	}
	return tf, cf, tp99, cp99
}

func merge(into *Phase, p Phase) {
	into.Ops += p.Ops
	into.Errors += p.Errors
	into.Elapsed += p.Elapsed
	into.Hist.Merge(p.Hist)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// addCPU adds what a request cost in CPU to r, per saturating round and as
// the median ratio ceiling/target: the throughput ratio that CPU alone
// would give, steadier than throughput when other processes share the cores.
func addCPU(r *Result, c Comparison) {
	r.Extra["cpu_us_per_op_rounds"] = roundAll(c.CPUPerOp, 1)
	r.Extra["ceiling_cpu_us_per_op_rounds"] = roundAll(c.CeilCPUPerOp, 1)
	if t := median(c.CPUPerOp); t > 0 {
		r.Extra["cpu_ratio"] = round(median(c.CeilCPUPerOp)/t, 2)
	}
}
