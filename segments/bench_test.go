package segments

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus/bustest"
)

func TestRunBench(t *testing.T) {
	conn := bustest.Start(t)
	opts := BenchOptions{Events: 20_000, Visitors: 2_000, LatencyFor: 500 * time.Millisecond, Ceiling: 5_000, Seed: 7}
	if n, _ := strconv.Atoi(os.Getenv("SEGMENTS_BENCH_EVENTS")); n > 0 {
		rate, _ := strconv.ParseFloat(os.Getenv("SEGMENTS_BENCH_RATE"), 64)
		opts = BenchOptions{Events: n, LatencyRate: rate}
	}
	res, err := RunBench(context.Background(), conn, opts, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Lost != 0 || res.Duplicated != 0 || res.Leaks != 0 || res.Dropped != 0 {
		t.Errorf("lost %d duplicated %d leaks %d dropped %d", res.Lost, res.Duplicated, res.Leaks, res.Dropped)
	}
	// Sensitive queries are dropped at the publisher's choke point now, so
	// the builder has none left to drop: Sensitive is not asked to be > 0.
	if res.Records != res.Visitors || res.SkippedConsent == 0 {
		t.Errorf("records %d of %d visitors, sensitive %d, no consent %d", res.Records, res.Visitors, res.Sensitive, res.SkippedConsent)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}
