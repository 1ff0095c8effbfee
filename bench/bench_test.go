package bench_test

import (
	"context"
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
	r, err := bench.Pixel(ctx, bench.Options{Duration: 600 * time.Millisecond, Rounds: 1, Conns: 4}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops == 0 || r.Ceiling == 0 || r.Ratio <= 0 {
		t.Fatalf("nothing measured: %+v", r)
	}
	if r.Lost != 0 {
		t.Fatalf("lost %d events: %+v", r.Lost, r.Extra)
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
