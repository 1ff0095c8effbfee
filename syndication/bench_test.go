package syndication_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/syndication"
)

// TestRunBench runs a small bench to keep RunBench working; the figures of
// the full run come from `adsyn bench syndication`.
func TestRunBench(t *testing.T) {
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := syndication.BenchOptions{Changes: 200, Rate: 200, Duration: time.Second, Shards: 4}
	if os.Getenv("ADSYN_BENCH_FULL") != "" {
		opts = syndication.BenchOptions{}
	}
	res, err := syndication.RunBench(ctx, conn, opts, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Lost != 0 || res.Ops != opts.Changes*5 && opts.Changes != 0 {
		t.Errorf("lost %d, ops %d", res.Lost, res.Ops)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
