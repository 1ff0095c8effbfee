package metrics

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// Bucket sets, in seconds, fitted to what each histogram times.
var (
	// EdgeBuckets suit the edge's handlers (pixel, ad): 5µs to 50ms.
	EdgeBuckets = []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3}
	// LatencyBuckets suit work that makes NATS round trips (flushes, index
	// builds, queries): 100µs to 10s.
	LatencyBuckets = []float64{100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10}
	// DeliveryBuckets suit deliveries to partners over the network, slow
	// partners and timeouts included: 1ms to 5 minutes.
	DeliveryBuckets = []float64{1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10, 30, 60, 120, 300}
)

// Registry holds every series of one process.
type Registry struct {
	prom *prometheus.Registry

	mu     sync.Mutex
	funcs  map[string]*summed    // counters and gauges, by name and labels
	histos map[string]*Histogram // by name and labels
}

// summed is one exposed series whose value is the sum of every source
// registered under its name and labels: two components of one process that
// register the same series (two builders, say) show as one.
type summed struct {
	mu      sync.Mutex
	sources []func() float64
}

func (s *summed) add(fn func() float64) {
	s.mu.Lock()
	s.sources = append(s.sources, fn)
	s.mu.Unlock()
}

func (s *summed) value() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v float64
	for _, fn := range s.sources {
		v += fn()
	}
	return v
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{prom: prometheus.NewRegistry(), funcs: map[string]*summed{}, histos: map[string]*Histogram{}}
}

// NewProcessRegistry returns the registry of a whole process: the Go
// runtime (go_*) and process (process_*) series included.
func NewProcessRegistry() *Registry {
	r := NewRegistry()
	r.prom.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// constLabels turns k, v pairs into labels and a key naming the series.
func constLabels(name string, kv []string) (prometheus.Labels, string) {
	if len(kv)%2 != 0 {
		panic(fmt.Sprintf("metrics: %s: odd number of label arguments", name))
	}
	if len(kv) == 0 {
		return nil, name
	}
	l := make(prometheus.Labels, len(kv)/2)
	var key strings.Builder
	key.WriteString(name)
	for i := 0; i < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
		fmt.Fprintf(&key, "\x00%s\x00%s", kv[i], kv[i+1])
	}
	return l, key.String()
}

func checkName(name string, counter bool) {
	if strings.HasSuffix(name, "_total") != counter {
		if counter {
			panic(fmt.Sprintf("metrics: counter %s must end in _total", name))
		}
		panic(fmt.Sprintf("metrics: gauge %s must not end in _total", name))
	}
}

// register adds fn as a source of the counter or gauge name{labels}.
func (r *Registry) register(name, help string, counter bool, fn func() float64, labels []string) {
	checkName(name, counter)
	l, key := constLabels(name, labels)
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.funcs[key]; ok {
		s.add(fn)
		return
	}
	s := &summed{sources: []func() float64{fn}}
	opts := prometheus.Opts{Name: name, Help: help, ConstLabels: l}
	var c prometheus.Collector
	if counter {
		c = prometheus.NewCounterFunc(prometheus.CounterOpts(opts), s.value)
	} else {
		c = prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts), s.value)
	}
	if err := r.prom.Register(c); err != nil {
		panic(fmt.Sprintf("metrics: %s: %v", name, err))
	}
	r.funcs[key] = s
}

// Counter is a monotonically increasing count. It is a plain atomic, exposed
// through a client_golang CounterFunc, so the hot path pays one atomic add
// and Load stays exact and cheap.
type Counter struct{ v atomic.Uint64 }

// Counter registers a counter; labels are key, value pairs.
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	c := &Counter{}
	r.register(name, help, true, func() float64 { return float64(c.v.Load()) }, labels)
	return c
}

func (c *Counter) Inc()         { c.v.Add(1) }
func (c *Counter) Add(n uint64) { c.v.Add(n) }
func (c *Counter) Load() uint64 { return c.v.Load() }

// CounterFunc registers a counter whose running total another component
// keeps (a cache's hits, a connection's reconnects), read at scrape time.
func (r *Registry) CounterFunc(name, help string, fn func() float64, labels ...string) {
	r.register(name, help, true, fn, labels)
}

// Gauge registers a value read at scrape time.
func (r *Registry) Gauge(name, help string, fn func() float64, labels ...string) {
	r.register(name, help, false, fn, labels)
}

// Histogram counts observations into fixed buckets.
type Histogram struct{ h prometheus.Histogram }

// Histogram registers a histogram with the given upper bounds (one of the
// bucket sets above). Registering the same name and labels again returns
// the same histogram.
func (r *Registry) Histogram(name, help string, bounds []float64, labels ...string) *Histogram {
	checkName(name, false)
	l, key := constLabels(name, labels)
	r.mu.Lock()
	defer r.mu.Unlock()
	if h, ok := r.histos[key]; ok {
		return h
	}
	h := &Histogram{h: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: name, Help: help, ConstLabels: l, Buckets: append([]float64(nil), bounds...),
	})}
	if err := r.prom.Register(h.h); err != nil {
		panic(fmt.Sprintf("metrics: %s: %v", name, err))
	}
	r.histos[key] = h
	return h
}

// Observe records v.
func (h *Histogram) Observe(v float64) { h.h.Observe(v) }

// WriteText writes every series in the Prometheus text exposition format.
func (r *Registry) WriteText(w io.Writer) error {
	mfs, err := r.prom.Gather()
	if err != nil {
		return fmt.Errorf("metrics: gather: %w", err)
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return fmt.Errorf("metrics: write: %w", err)
		}
	}
	return nil
}

// Handler serves the registry for a Prometheus scrape, in whichever format
// the scraper asks for.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.prom, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// BuildInfo registers adsyn_build_info, always 1, whose labels say what the
// binary was built from, so dashboards can tell versions apart.
func (r *Registry) BuildInfo(version, revision, goVersion string) {
	r.Gauge("adsyn_build_info", "What this binary was built from; always 1.", func() float64 { return 1 },
		"version", version, "revision", revision, "goversion", goVersion)
}
