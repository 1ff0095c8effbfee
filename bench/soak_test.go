package bench_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/bench"
)

// TestSoakScenario runs a short soak: every load at once on one process,
// a line per interval, a verdict per figure, and nothing answered lost.
// It asserts no speed and no verdict: tests do not time things.
func TestSoakScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var progress strings.Builder
	r, err := bench.Soak(ctx, bench.Options{Duration: 5 * time.Second, Conns: 4, Rate: 400}, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if r.Ops == 0 || r.Extra["answered_events"].(int64) == 0 {
		t.Fatalf("nothing answered: %+v\n%s", r, progress.String())
	}
	if r.Lost != 0 {
		t.Fatalf("lost %d events: %+v", r.Lost, r.Extra)
	}
	if n := r.Extra["profile_edits"].(int64); n == 0 {
		t.Errorf("no profile edited: the syndication worker got no load")
	}
	lines := 0
	for _, l := range strings.Split(progress.String(), "\n") {
		if f := strings.Fields(l); len(f) == 9 && strings.HasSuffix(f[0], "s") && f[0] != "t" {
			lines++
		}
	}
	// A sample made late by a slow one before it is skipped, not bunched.
	skipped, _ := r.Extra["samples_skipped"].(int)
	if lines < 1 || lines+skipped != 5 || r.Extra["samples"] != lines {
		t.Errorf("%d sample lines and %d skipped in 5s at one a second, want 5 in all:\n%s", lines, skipped, progress.String())
	}
	for _, k := range []string{"verdict_rss", "verdict_goroutines", "verdict_ack_pending"} {
		if v, _ := r.Extra[k].(string); v == "" || !strings.Contains(progress.String(), v) {
			t.Errorf("%s missing from the result or the progress: %q", k, v)
		}
	}
}

// TestJudgeSoak holds the verdict's rule on literal series: the first fifth
// is warm-up; the last half's median may pass the first half's by a tenth
// or the floor (32 MiB, 20 goroutines, 1,000 pending), not more.
func TestJudgeSoak(t *testing.T) {
	series := func(rss []float64, gor []int, pending []int64) []bench.SoakSample {
		out := make([]bench.SoakSample, len(rss))
		for i := range rss {
			out[i] = bench.SoakSample{RSSMiB: rss[i], Goroutines: gor[i], AckPending: pending[i]}
		}
		return out
	}
	cases := []struct {
		name    string
		samples []bench.SoakSample
		flat    [3]bool // rss, goroutines, pending
		judged  bool
	}{{
		name: "warm-up growth is not judged; all flat after",
		samples: series(
			[]float64{50, 400, 400, 410, 405, 400, 420, 410, 415, 420},
			[]int{10, 100, 100, 101, 99, 100, 102, 100, 101, 100},
			[]int64{0, 5000, 30, 40, 20, 35, 25, 30, 45, 30}),
		flat: [3]bool{true, true, true}, judged: true,
	}, {
		name: "everything growing",
		samples: series(
			[]float64{100, 200, 300, 400, 500, 600, 700, 800, 900, 1000},
			[]int{100, 150, 200, 250, 300, 350, 400, 450, 500, 550},
			[]int64{0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000}),
		flat: [3]bool{false, false, false}, judged: true,
	}, {
		name: "within the floors",
		samples: series(
			[]float64{100, 100, 100, 100, 100, 130, 130, 130, 130, 130},
			[]int{50, 50, 50, 50, 50, 69, 69, 69, 69, 69},
			[]int64{0, 0, 0, 0, 0, 999, 999, 999, 999, 999}),
		flat: [3]bool{true, true, true}, judged: true,
	}, {
		name:    "too short",
		samples: series([]float64{1, 2, 3}, []int{1, 2, 3}, []int64{1, 2, 3}),
		judged:  false,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := bench.JudgeSoak(c.samples)
			if len(got) != 3 {
				t.Fatalf("%d verdicts, want 3", len(got))
			}
			for i, v := range got {
				if v.Judged != c.judged || (c.judged && v.Flat != c.flat[i]) {
					t.Errorf("%s", v)
				}
			}
		})
	}
}
