package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds every series of one process.
type Registry struct {
	mu     sync.Mutex
	series map[string]*family
}

type family struct {
	name, help, typ string
	series          []writer
}

type writer interface {
	write(w io.Writer, name string)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{series: map[string]*family{}} }

func (r *Registry) add(name, help, typ string, s writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.series[name]
	if !ok {
		f = &family{name: name, help: help, typ: typ}
		r.series[name] = f
	}
	if f.typ != typ {
		panic(fmt.Sprintf("metrics: %s registered as %s and %s", name, f.typ, typ))
	}
	f.series = append(f.series, s)
}

// labelString renders k,v pairs as {k="v",...}.
func labelString(kv []string) string {
	if len(kv) == 0 {
		return ""
	}
	if len(kv)%2 != 0 {
		panic("metrics: odd number of label arguments")
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(kv[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// Counter is a monotonically increasing count.
type Counter struct {
	v      atomic.Uint64
	labels string
}

// Counter registers a counter; labels are key, value pairs.
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	c := &Counter{labels: labelString(labels)}
	r.add(name, help, "counter", c)
	return c
}

func (c *Counter) Inc()         { c.v.Add(1) }
func (c *Counter) Add(n uint64) { c.v.Add(n) }
func (c *Counter) Load() uint64 { return c.v.Load() }
func (c *Counter) write(w io.Writer, name string) {
	fmt.Fprintf(w, "%s%s %d\n", name, c.labels, c.v.Load())
}

type gauge struct {
	fn     func() float64
	labels string
}

// Gauge registers a value read at scrape time.
func (r *Registry) Gauge(name, help string, fn func() float64, labels ...string) {
	r.add(name, help, "gauge", &gauge{fn: fn, labels: labelString(labels)})
}

func (g *gauge) write(w io.Writer, name string) {
	fmt.Fprintf(w, "%s%s %s\n", name, g.labels, formatFloat(g.fn()))
}

// Histogram counts observations into fixed buckets.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // one per bound, plus +Inf
	sum    atomic.Uint64   // float64 bits
	labels []string
}

// LatencyBuckets suit request latencies in seconds, from 25µs to 2.5s.
var LatencyBuckets = []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5}

// Histogram registers a histogram with the given upper bounds.
func (r *Registry) Histogram(name, help string, bounds []float64, labels ...string) *Histogram {
	b := append([]float64(nil), bounds...)
	sort.Float64s(b)
	h := &Histogram{bounds: b, counts: make([]atomic.Uint64, len(b)+1), labels: labels}
	labelString(labels) // validate now
	r.add(name, help, "histogram", h)
	return h
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v)
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (h *Histogram) write(w io.Writer, name string) {
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		fmt.Fprintf(w, "%s_bucket%s %d\n", name, labelString(append(h.labels[:len(h.labels):len(h.labels)], "le", formatFloat(b))), cum)
	}
	cum += h.counts[len(h.bounds)].Load()
	fmt.Fprintf(w, "%s_bucket%s %d\n", name, labelString(append(h.labels[:len(h.labels):len(h.labels)], "le", "+Inf")), cum)
	l := labelString(h.labels)
	fmt.Fprintf(w, "%s_sum%s %s\n", name, l, formatFloat(math.Float64frombits(h.sum.Load())))
	fmt.Fprintf(w, "%s_count%s %d\n", name, l, cum)
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// WriteText writes every series in the Prometheus text exposition format.
func (r *Registry) WriteText(w io.Writer) {
	r.mu.Lock()
	names := make([]string, 0, len(r.series))
	for n := range r.series {
		names = append(names, n)
	}
	sort.Strings(names)
	fams := make([]*family, len(names))
	for i, n := range names {
		fams[i] = r.series[n]
	}
	r.mu.Unlock()
	for _, f := range fams {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		for _, s := range f.series {
			s.write(w, f.name)
		}
	}
}

// BuildInfo registers adsyn_build_info, always 1, whose labels say what the
// binary was built from, so dashboards can tell versions apart.
func (r *Registry) BuildInfo(version, revision, goVersion string) {
	r.Gauge("adsyn_build_info", "What this binary was built from; always 1.", func() float64 { return 1 },
		"version", version, "revision", revision, "goversion", goVersion)
}
