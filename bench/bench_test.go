package bench_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/bench"
)

// TestPixelScenario runs a short pixel benchmark: it must finish, measure
// both sides and lose nothing. It asserts no speed: tests do not time things.
func TestPixelScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var progress strings.Builder
	traceFile := filepath.Join(t.TempDir(), "fixed.trace")
	r, err := bench.Pixel(ctx, bench.Options{Duration: 600 * time.Millisecond, Rounds: 1, Conns: 4, Trace: traceFile}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops == 0 || r.Ceiling == 0 || r.Ratio <= 0 {
		t.Fatalf("nothing measured: %+v", r)
	}
	if r.Lost != 0 {
		t.Fatalf("lost %d events: %+v", r.Lost, r.Extra)
	}
	if p99s, _ := r.Extra["p99_rounds_ms"].([]float64); len(p99s) != 1 || p99s[0] <= 0 {
		t.Errorf("p99 of the one fixed round: %v", r.Extra["p99_rounds_ms"])
	}
	if fi, err := os.Stat(traceFile); err != nil || fi.Size() == 0 {
		t.Errorf("no execution trace of the fixed round: %v", err)
	}
	var js strings.Builder
	if err := r.JSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"scenario":"pixel"`, `"ops_per_s":`, `"p50_ms":`, `"p99_ms":`, `"p999_ms":`, `"ceiling_ops_per_s":`, `"ratio":`, `"lost":0`} {
		if !strings.Contains(js.String(), k) {
			t.Errorf("JSON lacks %s: %s", k, js.String())
		}
	}
}
