package stats

import (
	"context"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus/bustest"
)

// RunBench counts every event it publishes and answers its query.
func TestRunBench(t *testing.T) {
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := RunBench(ctx, conn, BenchOptions{Events: 50_000, Campaigns: 100, Sites: 10, QueryDays: 7, Queries: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 0 || res.Counted != 50_000 || res.EventsPerS <= 0 || res.QueryHours != 7*24 || res.QueryP50Ms <= 0 {
		t.Errorf("%+v", res)
	}
}
