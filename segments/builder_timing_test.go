package segments

import (
	"context"
	"io"
	"testing"

	"github.com/adsyn/adsyn/internal/bus/bustest"
)

// BenchmarkBuilder runs RunBench (200k events, 20k visitors) per iteration
// on a fresh embedded server: -benchtime=1x is enough.
func BenchmarkBuilder(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		conn := bustest.Start(b)
		b.StartTimer()
		res, err := RunBench(context.Background(), conn, BenchOptions{Events: 200_000, Visitors: 20_000, LatencyFor: -1, Ceiling: 50_000}, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.OpsPerS, "events/s")
		b.ReportMetric(res.OpsPerCPUS, "events/cpu-s")
		b.ReportMetric(res.CeilingOpsPerS, "ceiling-writes/s")
		b.ReportMetric(float64(res.Lost), "lost")
	}
}
