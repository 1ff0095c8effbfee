package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/adserver"
	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/pixel"
)

// Soak runs every scenario's load at once on one adsyn process with every
// role (edge, segments, stats, syndication, api, the demo campaigns and
// partner): pixel hits and ad requests at half the throughput the two
// reach together (or o.Rate in all, split evenly), while users edit their
// profiles so that the syndication worker delivers to the demo partner.
// It samples the process's RSS, goroutines and pending acknowledgements
// (JetStream consumers' and the edge publisher's) every interval, prints a
// line each time, and judges whether each stayed flat. o.Duration is the
// soak's length; the load generator runs in the same process, so RSS and
// goroutines include it.
func Soak(ctx context.Context, o Options, progress io.Writer) (Result, error) {
	o.defaults()
	interval := SoakInterval(o.Duration)
	s, err := startSoak(ctx, o, progress)
	if err != nil {
		return Result{}, err
	}
	defer s.stop()

	pixelHz, adHz := o.Rate/2, o.Rate/2
	if o.Rate <= 0 {
		calib := min(max(o.Duration/10, 2*time.Second), 10*time.Second)
		fmt.Fprintf(progress, "soak: measuring capacity: pixel and ad saturated at once for %s\n", calib)
		var wg sync.WaitGroup
		var px, ad Phase
		wg.Add(2)
		go func() { defer wg.Done(); px = s.pixel.Saturate(ctx, calib, &s.pixelSeq) }()
		go func() { defer wg.Done(); ad = s.ad.Saturate(ctx, calib, &s.adSeq) }()
		wg.Wait()
		pixelHz, adHz = px.OpsPerS/2, ad.OpsPerS/2
		fmt.Fprintf(progress, "soak: together: pixel %.0f req/s, ad %.0f req/s; soaking at half: %.0f and %.0f req/s\n", px.OpsPerS, ad.OpsPerS, pixelHz, adHz)
	}
	if pixelHz < 1 || adHz < 1 {
		return Result{}, fmt.Errorf("soak: rates too low to soak (pixel %.1f, ad %.1f req/s)", pixelHz, adHz)
	}
	// The calibration's last events must be in the stream before the
	// count starts, or they would be counted as the soak's.
	if err := s.settle(ctx); err != nil {
		return Result{}, err
	}
	first, err := lastSeq(ctx, s.app.Conn())
	if err != nil {
		return Result{}, err
	}
	pixelBefore, servedBefore := s.pixel.Answered.Load(), s.served.Load()

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	var px, ad Phase
	wg.Add(3)
	go func() { defer wg.Done(); px = s.pixel.Fixed(loadCtx, o.Duration, pixelHz, &s.pixelSeq) }()
	go func() { defer wg.Done(); ad = s.ad.Fixed(loadCtx, o.Duration, adHz, &s.adSeq) }()
	edits := make(chan error, 1)
	go func() { defer wg.Done(); edits <- s.editProfiles(loadCtx, soakEditsPerS) }()

	fmt.Fprintf(progress, "soak: %s, a line every %s; profile edits %d/s\n", o.Duration, interval, soakEditsPerS)
	fmt.Fprintf(progress, "%8s %8s %10s %8s %11s %10s %9s %9s %9s\n",
		"t", "rss_mib", "goroutines", "heap_mib", "ack_pending", "backlog", "inflight", "pixel/s", "ad/s")
	var samples []SoakSample
	start := time.Now()
	prev := SoakSample{PixelAnswered: s.pixel.Answered.Load(), AdAnswered: s.ad.Answered.Load()}
	// One sample per interval, each due at start + k×interval; a sample
	// that a slow one before it (JetStream busy) made late by more than
	// half an interval is skipped, so that lines do not bunch.
	skipped := 0
	for k := 1; k <= int(o.Duration/interval); k++ {
		due := start.Add(time.Duration(k) * interval)
		if time.Since(due) > interval/2 {
			skipped++
			continue
		}
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-time.After(time.Until(start.Add(time.Duration(k) * interval))):
		}
		sm := s.sample(ctx, time.Since(start))
		el := (sm.At - prev.At).Seconds()
		fmt.Fprintf(progress, "%8s %8.1f %10d %8.1f %11d %10d %9d %9.0f %9.0f\n",
			sm.At.Round(time.Second), sm.RSSMiB, sm.Goroutines, sm.HeapMiB, sm.AckPending, sm.Backlog, sm.Inflight,
			float64(sm.PixelAnswered-prev.PixelAnswered)/el, float64(sm.AdAnswered-prev.AdAnswered)/el)
		samples = append(samples, sm)
		prev = sm
		if k == 1 {
			writeHeapProfile(o.HeapProfile, ".start", progress)
		}
	}
	writeHeapProfile(o.HeapProfile, ".end", progress)
	stopLoad()
	wg.Wait()
	if err := <-edits; err != nil && !errors.Is(err, context.Canceled) {
		return Result{}, err
	}
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}

	// Everything answered is stored once the edge has drained.
	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.app.Publisher().Stop(stopCtx); err != nil {
		return Result{}, err
	}
	stored, err := bus.ReadEvents(stopCtx, s.app.Conn().JS, first+1, func(uint64, *event.Event) error { return nil })
	if err != nil {
		return Result{}, err
	}
	answered := (s.pixel.Answered.Load() - pixelBefore) + (s.served.Load() - servedBefore)

	all := newHist()
	all.Merge(px.Hist)
	all.Merge(ad.Hist)
	lat := Phase{Hist: all}
	r := Result{
		Scenario: "soak", Ops: px.Ops + ad.Ops, OpsPerS: float64(px.Ops+ad.Ops) / time.Since(start).Seconds(),
		P50: lat.Quantile(0.5), P99: lat.Quantile(0.99), P999: lat.Quantile(0.999),
		Lost: answered - int64(stored),
		Extra: map[string]any{
			"pixel_rate_hz": round(pixelHz, 0), "ad_rate_hz": round(adHz, 0),
			"pixel_p99_ms": round(px.Quantile(0.99), 3), "ad_p99_ms": round(ad.Quantile(0.99), 3),
			"errors":          px.Errors + ad.Errors,
			"answered_events": answered, "stored_events": stored,
			"dropped":         s.app.Publisher().Stats().Dropped,
			"profile_edits":   s.edits.Load(),
			"samples":         len(samples),
			"samples_skipped": skipped,
			"latency_is":      "pixel and ad requests together, at the fixed soak rates",
		},
	}
	for _, t := range JudgeSoak(samples) {
		r.Extra[t.Name] = t.String()
		fmt.Fprintf(progress, "soak: %s: %s\n", t.Name, t)
	}
	return r, nil
}

// soakEditsPerS is the profile edits per second during a soak: each is a
// change the syndication worker delivers to the demo partner.
const soakEditsPerS = 10

// SoakInterval is the time between two samples of a soak of d: forty lines
// in all, between one and thirty seconds apart.
func SoakInterval(d time.Duration) time.Duration {
	return min(max(d/40, time.Second), 30*time.Second).Round(time.Second)
}

// SoakSample is one line of a soak.
type SoakSample struct {
	At         time.Duration
	RSSMiB     float64 // 0 where /proc/self/status is not there
	HeapMiB    float64
	Goroutines int
	// AckPending is messages delivered to a JetStream consumer and not yet
	// acknowledged, summed over every consumer of every stream; Backlog
	// those not yet delivered; Inflight the events the edge accepted and
	// JetStream has not yet acknowledged.
	AckPending, Backlog, Inflight int64
	PixelAnswered, AdAnswered     int64
}

type soak struct {
	app              *app.App
	pixel, ad        *Load
	served           atomic.Int64
	pixelSeq, adSeq  atomic.Uint64
	admin            string
	users            []soakUser
	edits            atomic.Int64
	stop             func()
	apiBase          string
	http             *http.Client
	consumerWarnOnce sync.Once
	progress         io.Writer
}

type soakUser struct{ id, key string }

// startSoak starts adsyn with every role and the demo, and registers the
// users whose profiles the soak edits.
func startSoak(ctx context.Context, o Options, progress io.Writer) (*soak, error) {
	dir, err := os.MkdirTemp("", "adsyn-soak-")
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.DataDir, cfg.Demo = dir, true
	cfg.HTTPAddr, cfg.APIAddr, cfg.NATSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	// The load comes from one address and one key per user: no 429s.
	cfg.APIRate, cfg.APIIPRate = 0, 0
	var keys bytes.Buffer
	a, err := app.New(cfg, o.Log, &keys)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	fmt.Fprintln(progress, "soak: starting adsyn with every role and the demo data (embedded NATS)")
	if err := a.Start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &soak{app: a, apiBase: "http://" + a.APIAddr(), http: &http.Client{Timeout: 10 * time.Second}, progress: progress}
	s.stop = func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = a.Stop(stopCtx)
		os.RemoveAll(dir)
	}
	sc := bufio.NewScanner(&keys)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "admin" {
			s.admin = f[1]
		}
	}
	if s.admin == "" {
		s.stop()
		return nil, errors.New("soak: adsyn printed no admin key")
	}
	for i := range soakUsers {
		u, err := s.register(ctx, i)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.users = append(s.users, u)
	}
	gif := func(res *fasthttp.Response) bool { return res.StatusCode() == 200 && len(res.Body()) == len(pixel.GIF) }
	s.pixel = &Load{Addr: a.EdgeAddr(), Conns: o.Conns, Request: pixelMix{cookielessPct: 20}.request, OK: gif} // the pixel scenario's returning-visitor mix
	s.ad = &Load{Addr: a.EdgeAddr(), Conns: o.Conns, Request: soakAdRequest, OK: func(res *fasthttp.Response) bool {
		switch res.StatusCode() {
		case fasthttp.StatusOK:
			s.served.Add(1)
			return true
		case fasthttp.StatusNoContent:
			return true
		}
		return false
	}}
	return s, nil
}

// soakUsers is how many users edit their profiles during a soak.
const soakUsers = 20

// soakAdRequest asks for an ad in one of the demo site's two slots, as one
// of 10,000 returning visitors.
func soakAdRequest(i uint64, req *fasthttp.Request) {
	if i%2 == 0 {
		req.SetRequestURI("/ad?site=" + adserver.DemoSite + "&slot=top")
	} else {
		req.SetRequestURI("/ad?site=" + adserver.DemoSite + "&slot=side")
	}
	req.Header.Set("User-Agent", benchUA)
	req.Header.Set("Accept-Language", "ru-RU,ru;q=0.9,en;q=0.8")
	var id [pixel.VisitorIDLen]byte
	visitorID(i%10000, &id)
	req.Header.SetCookieBytesKV([]byte(pixel.CookieName), id[:])
}

// register makes a user who consents to syndication, with public fields
// the demo partner's contract lists.
func (s *soak) register(ctx context.Context, i int) (soakUser, error) {
	body := fmt.Sprintf(`{"name":"Soak User %d","city":"City 0","competence":["plumbing"],"language":"en",`+
		`"visibility":{"name":"public","city":"public","competence":"public"},"consents":{"syndication":true},"consent_source":"soak"}`, i)
	var out struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Key string `json:"key"`
	}
	code, b, err := s.call(ctx, http.MethodPost, "/v1/users", s.admin, body)
	if err == nil && code == http.StatusCreated {
		err = json.Unmarshal(b, &out)
	}
	if err != nil || code != http.StatusCreated || out.User.ID == "" || out.Key == "" {
		return soakUser{}, fmt.Errorf("soak: register a user: %d %.200s %v", code, b, err)
	}
	return soakUser{id: out.User.ID, key: out.Key}, nil
}

// editProfiles changes a user's public city perSecond times a second until
// ctx ends; each change is delivered to the partners.
func (s *soak) editProfiles(ctx context.Context, perSecond int) error {
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		u := s.users[n%len(s.users)]
		code, b, err := s.call(ctx, http.MethodPatch, "/v1/users/"+u.id, u.key, fmt.Sprintf(`{"city":"City %d"}`, n))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("soak: edit profile %s: %d %.200s %v", u.id, code, b, err)
		}
		s.edits.Add(1)
	}
}

func (s *soak) call(ctx context.Context, method, path, key, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.apiBase+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, b, err
}

// settle waits until JetStream has acknowledged every event the edge
// accepted, for up to a minute.
func (s *soak) settle(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for s.app.Publisher().Stats().Inflight > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("soak: %d events still unacknowledged a minute after the calibration", s.app.Publisher().Stats().Inflight)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// sample reads the process's figures now.
func (s *soak) sample(ctx context.Context, at time.Duration) SoakSample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	sm := SoakSample{
		At: at, RSSMiB: rssMiB(), HeapMiB: float64(ms.HeapInuse) / (1 << 20), Goroutines: runtime.NumGoroutine(),
		Inflight:      s.app.Publisher().Stats().Inflight,
		PixelAnswered: s.pixel.Answered.Load(), AdAnswered: s.ad.Answered.Load(),
	}
	ackPending, backlog, err := consumerPending(ctx, s.app.Conn())
	if err != nil {
		s.consumerWarnOnce.Do(func() { fmt.Fprintf(s.progress, "soak: consumer info: %v\n", err) })
	}
	sm.AckPending, sm.Backlog = ackPending, backlog
	return sm
}

// consumerPending sums, over every consumer of every stream, the messages
// delivered and not acknowledged and those not yet delivered.
func consumerPending(ctx context.Context, c *bus.Conn) (ackPending, backlog int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	streams := c.JS.ListStreams(ctx)
	for si := range streams.Info() {
		st, err := c.JS.Stream(ctx, si.Config.Name)
		if err != nil {
			return ackPending, backlog, err
		}
		cons := st.ListConsumers(ctx)
		for ci := range cons.Info() {
			ackPending += int64(ci.NumAckPending)
			backlog += int64(ci.NumPending)
		}
		if err := cons.Err(); err != nil {
			return ackPending, backlog, err
		}
	}
	return ackPending, backlog, streams.Err()
}

// rssMiB is this process's resident set size, from /proc/self/status.
func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// SoakTrend is the verdict on one figure of a soak.
type SoakTrend struct {
	Name        string
	First, Last float64 // medians of the first and last half of the judged samples
	Tolerance   float64 // how much Last may exceed First and still be flat
	Judged      bool    // enough samples after the warm-up
	Flat        bool
}

func (t SoakTrend) String() string {
	switch {
	case !t.Judged:
		return "not judged (too few samples)"
	case t.Flat:
		return fmt.Sprintf("flat (median %.1f -> %.1f, tolerance +%.1f)", t.First, t.Last, t.Tolerance)
	}
	return fmt.Sprintf("GROWING (median %.1f -> %.1f, tolerance +%.1f)", t.First, t.Last, t.Tolerance)
}

// JudgeSoak says whether RSS, goroutines and pending acknowledgements
// stayed flat. The first fifth of the samples is warm-up (caches filling)
// and not judged; of the rest, the median of the last half may exceed the
// median of the first half by a tenth, or by a floor for small values:
// 32 MiB of RSS, 20 goroutines, 1,000 pending messages.
func JudgeSoak(samples []SoakSample) []SoakTrend {
	figures := []struct {
		name  string
		floor float64
		value func(SoakSample) float64
	}{
		{"verdict_rss", 32, func(s SoakSample) float64 { return s.RSSMiB }},
		{"verdict_goroutines", 20, func(s SoakSample) float64 { return float64(s.Goroutines) }},
		{"verdict_ack_pending", 1000, func(s SoakSample) float64 { return float64(s.AckPending + s.Inflight) }},
	}
	judged := samples[len(samples)/5:]
	var out []SoakTrend
	for _, f := range figures {
		t := SoakTrend{Name: f.name}
		if len(judged) >= 4 {
			v := make([]float64, len(judged))
			for i, s := range judged {
				v[i] = f.value(s)
			}
			half := len(v) / 2
			t.First, t.Last = median(v[:half]), median(v[len(v)-half:])
			t.Tolerance = max(t.First/10, f.floor)
			t.Judged, t.Flat = true, t.Last <= t.First+t.Tolerance
		}
		out = append(out, t)
	}
	return out
}

// writeHeapProfile writes the heap profile to path+suffix, if path is set.
// A failure is reported, not fatal: the soak's figures matter more.
func writeHeapProfile(path, suffix string, progress io.Writer) {
	if path == "" {
		return
	}
	runtime.GC() // the profile shows live memory as of the last collection
	f, err := os.Create(path + suffix)
	if err == nil {
		err = pprof.Lookup("heap").WriteTo(f, 0)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		fmt.Fprintf(progress, "soak: heap profile: %v\n", err)
	}
}
