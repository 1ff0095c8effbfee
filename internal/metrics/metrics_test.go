package metrics

import (
	"math"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads r's exposition back with the Prometheus text parser.
func parse(t *testing.T, r *Registry) map[string]*dto.MetricFamily {
	t.Helper()
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, b.String())
	}
	return fams
}

// series finds the series of fam whose labels include want.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) *dto.Metric {
	t.Helper()
	fam, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i < len(want); i += 2 {
			if have[want[i]] != want[i+1] {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no series %s%v", name, want)
	return nil
}

func TestWriteText(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("adsyn_events_total", "Events.", "stage", "accepted")
	r.Counter("adsyn_events_total", "Events.", "stage", "dropped").Add(2)
	r.Gauge("adsyn_nats_connected", "Connected.", func() float64 { return 1 })
	r.CounterFunc("adsyn_cache_hits_total", "Hits.", func() float64 { return 7 })
	h := r.Histogram("adsyn_latency_seconds", "Latency.", []float64{0.1, 1}, "route", "pixel")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				c.Inc()
				h.Observe(0.25)
			}
		})
	}
	wg.Wait()
	fams := parse(t, r)
	if got := fams["adsyn_events_total"].GetType(); got != dto.MetricType_COUNTER {
		t.Errorf("adsyn_events_total is a %v", got)
	}
	if got := series(t, fams, "adsyn_events_total", "stage", "accepted").GetCounter().GetValue(); got != 400 {
		t.Errorf("accepted = %v, want 400", got)
	}
	if got := series(t, fams, "adsyn_events_total", "stage", "dropped").GetCounter().GetValue(); got != 2 {
		t.Errorf("dropped = %v, want 2", got)
	}
	if got := series(t, fams, "adsyn_cache_hits_total").GetCounter().GetValue(); got != 7 {
		t.Errorf("cache hits = %v, want 7", got)
	}
	if got := series(t, fams, "adsyn_nats_connected").GetGauge().GetValue(); got != 1 {
		t.Errorf("connected = %v, want 1", got)
	}
	hist := series(t, fams, "adsyn_latency_seconds", "route", "pixel").GetHistogram()
	if hist.GetSampleCount() != 400 || hist.GetSampleSum() != 100 {
		t.Errorf("histogram count %d sum %v, want 400 and 100", hist.GetSampleCount(), hist.GetSampleSum())
	}
	wantCum := map[float64]uint64{0.1: 0, 1: 400, math.Inf(1): 400}
	for _, b := range hist.GetBucket() {
		if b.GetCumulativeCount() != wantCum[b.GetUpperBound()] {
			t.Errorf("bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), wantCum[b.GetUpperBound()])
		}
	}
}

// Two components of one process registering the same series show as one
// series, their sum; each keeps its own count.
func TestSameSeriesTwiceIsSummed(t *testing.T) {
	r := NewRegistry()
	a := r.Counter("adsyn_writes_total", "Writes.", "kind", "kv")
	b := r.Counter("adsyn_writes_total", "Writes.", "kind", "kv")
	a.Add(3)
	b.Add(4)
	r.Gauge("adsyn_lanes", "Lanes.", func() float64 { return 2 })
	r.Gauge("adsyn_lanes", "Lanes.", func() float64 { return 5 })
	h1 := r.Histogram("adsyn_flush_seconds", "Flush.", LatencyBuckets)
	h2 := r.Histogram("adsyn_flush_seconds", "Flush.", LatencyBuckets)
	h1.Observe(0.001)
	h2.Observe(0.001)
	fams := parse(t, r)
	if a.Load() != 3 || b.Load() != 4 {
		t.Errorf("Load = %d, %d; want 3, 4", a.Load(), b.Load())
	}
	if n := len(fams["adsyn_writes_total"].GetMetric()); n != 1 {
		t.Errorf("%d series of adsyn_writes_total, want 1", n)
	}
	if got := series(t, fams, "adsyn_writes_total", "kind", "kv").GetCounter().GetValue(); got != 7 {
		t.Errorf("writes = %v, want 7", got)
	}
	if got := series(t, fams, "adsyn_lanes").GetGauge().GetValue(); got != 7 {
		t.Errorf("lanes = %v, want 7", got)
	}
	if got := series(t, fams, "adsyn_flush_seconds").GetHistogram().GetSampleCount(); got != 2 {
		t.Errorf("flushes = %d, want 2", got)
	}
}

func TestNamesFollowConventions(t *testing.T) {
	for name, register := range map[string]func(r *Registry){
		"counter without _total":  func(r *Registry) { r.Counter("adsyn_hits", "Hits.") },
		"counter func w/o _total": func(r *Registry) { r.CounterFunc("adsyn_reconnects", "R.", func() float64 { return 0 }) },
		"gauge with _total":       func(r *Registry) { r.Gauge("adsyn_hits_total", "Hits.", func() float64 { return 0 }) },
		"histogram with _total":   func(r *Registry) { r.Histogram("adsyn_hits_total", "Hits.", EdgeBuckets) },
		"odd label arguments":     func(r *Registry) { r.Counter("adsyn_hits_total", "Hits.", "site") },
		"other label names":       func(r *Registry) { r.Counter("adsyn_x_total", "X."); r.Counter("adsyn_x_total", "X.", "a", "b") },
		"other help": func(r *Registry) {
			r.Counter("adsyn_x_total", "X.", "a", "1")
			r.Counter("adsyn_x_total", "Y.", "a", "2")
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("registered without a panic")
				}
			}()
			register(NewRegistry())
		})
	}
}

// The edge's buckets resolve tens of microseconds; delivery's reach minutes.
func TestBucketsFitWhatTheyTime(t *testing.T) {
	r := NewRegistry()
	edge := r.Histogram("adsyn_edge_seconds", "Edge.", EdgeBuckets)
	delivery := r.Histogram("adsyn_delivery_seconds", "Delivery.", DeliveryBuckets)
	edge.Observe(30e-6)
	delivery.Observe(90)
	fams := parse(t, r)
	cum := func(name string, le float64) uint64 {
		for _, b := range series(t, fams, name).GetHistogram().GetBucket() {
			if b.GetUpperBound() == le {
				return b.GetCumulativeCount()
			}
		}
		t.Fatalf("%s has no bucket le=%v", name, le)
		return 0
	}
	if cum("adsyn_edge_seconds", 25e-6) != 0 || cum("adsyn_edge_seconds", 50e-6) != 1 {
		t.Errorf("30µs not between the 25µs and 50µs buckets")
	}
	if cum("adsyn_delivery_seconds", 60) != 0 || cum("adsyn_delivery_seconds", 120) != 1 {
		t.Errorf("90s not between the 1min and 2min buckets")
	}
}

func TestBuildInfo(t *testing.T) {
	r := NewRegistry()
	r.BuildInfo("v1.4.2", "bef6f35-dirty", "go1.26.0")
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	const want = "# HELP adsyn_build_info What this binary was built from; always 1.\n" +
		"# TYPE adsyn_build_info gauge\n" +
		`adsyn_build_info{goversion="go1.26.0",revision="bef6f35-dirty",version="v1.4.2"} 1` + "\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
