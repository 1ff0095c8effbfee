package metrics

import (
	"strings"
	"sync"
	"testing"
)

func TestWriteText(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("adsyn_events_total", "Events.", "stage", "accepted")
	r.Counter("adsyn_events_total", "Events.", "stage", "dropped").Add(2)
	r.Gauge("adsyn_nats_connected", "Connected.", func() float64 { return 1 })
	h := r.Histogram("adsyn_latency_seconds", "Latency.", []float64{0.1, 1}, "route", "pixel")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Inc()
				h.Observe(0.25)
			}
		}()
	}
	wg.Wait()
	var b strings.Builder
	r.WriteText(&b)
	for _, want := range []string{
		`# TYPE adsyn_events_total counter`,
		`adsyn_events_total{stage="accepted"} 400`,
		`adsyn_events_total{stage="dropped"} 2`,
		`adsyn_nats_connected 1`,
		`adsyn_latency_seconds_bucket{route="pixel",le="0.1"} 0`,
		`adsyn_latency_seconds_bucket{route="pixel",le="1"} 400`,
		`adsyn_latency_seconds_bucket{route="pixel",le="+Inf"} 400`,
		`adsyn_latency_seconds_count{route="pixel"} 400`,
		`adsyn_latency_seconds_sum{route="pixel"} 100`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
}

func TestBuildInfo(t *testing.T) {
	r := NewRegistry()
	r.BuildInfo("v1.4.2", "bef6f35-dirty", "go1.26.0")
	var b strings.Builder
	r.WriteText(&b)
	const want = "# HELP adsyn_build_info What this binary was built from; always 1.\n" +
		"# TYPE adsyn_build_info gauge\n" +
		`adsyn_build_info{version="v1.4.2",revision="bef6f35-dirty",goversion="go1.26.0"} 1` + "\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
