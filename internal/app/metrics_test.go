package app_test

import (
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeMetrics scrapes /metrics over HTTP as Prometheus would, parses it
// with the Prometheus text parser and checks the runtime, process and adsyn
// series, after pixelHits answered pixel hits.
func scrapeMetrics(t *testing.T, api string, pixelHits int) {
	t.Helper()
	res, err := http.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("/metrics: %d %s", res.StatusCode, ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	value := func(name string, labels ...string) float64 {
		t.Helper()
		fam, ok := fams[name]
		if !ok {
			t.Fatalf("/metrics has no %s", name)
		}
	next:
		for _, m := range fam.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch fam.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount())
			}
			t.Fatalf("%s is a %v", name, fam.GetType())
		}
		t.Fatalf("/metrics has no %s%v", name, labels)
		return 0
	}
	if v := value("go_goroutines"); v < 1 {
		t.Errorf("go_goroutines %v", v)
	}
	if v := value("process_resident_memory_bytes"); v < 1<<20 {
		t.Errorf("process_resident_memory_bytes %v", v)
	}
	if v := value("adsyn_build_info"); v != 1 {
		t.Errorf("adsyn_build_info %v", v)
	}
	if v := value("adsyn_nats_connected"); v != 1 {
		t.Errorf("adsyn_nats_connected %v", v)
	}
	if v := value("adsyn_events_total", "stage", "accepted"); v < float64(pixelHits) {
		t.Errorf("adsyn_events_total{stage=accepted} %v, want ≥ %d", v, pixelHits)
	}
	if v := value("adsyn_pixel_latency_seconds"); v < float64(pixelHits) {
		t.Errorf("adsyn_pixel_latency_seconds counted %v requests, want ≥ %d", v, pixelHits)
	}
	for _, name := range []string{"adsyn_nats_reconnects_total", "adsyn_nats_disconnections_total", "adsyn_segments_cache_hits_total", "adsyn_segments_cache_misses_total"} {
		if fam, ok := fams[name]; !ok || fam.GetType() != dto.MetricType_COUNTER {
			t.Errorf("%s missing or not a counter", name)
		}
	}
	// Prometheus conventions: counters, and only counters, end in _total.
	for name, fam := range fams {
		if counter := fam.GetType() == dto.MetricType_COUNTER; counter != strings.HasSuffix(name, "_total") {
			t.Errorf("%s is a %v", name, fam.GetType())
		}
	}
}
