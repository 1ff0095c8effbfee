package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"text/tabwriter"
)

// Result is one scenario's figures, printed as a table or, with --json, as
// one JSON object (the design's interface).
type Result struct {
	Scenario                   string
	Ops                        int64
	OpsPerS                    float64
	P50, P99, P999             float64 // ms, fixed-rate phase
	Ceiling                    float64 // ops/s of the bare ceiling; 0 where none applies
	CeilingName                string  // what the ceiling is (default "bare fasthttp")
	CeilP50, CeilP99, CeilP999 float64
	Ratio                      float64
	Lost                       int64 // answered but not stored; -1 when not checked
	// NoP999: too few latency samples for a p99.9; JSON says null.
	NoP999 bool
	Extra  map[string]any
}

// FromComparison fills a result from a target/ceiling comparison.
func FromComparison(scenario string, c Comparison) Result {
	return Result{
		Scenario: scenario,
		Ops:      c.Target.Ops, OpsPerS: c.Target.OpsPerS,
		P50: c.TargetFixed.Quantile(0.50), P99: c.TargetFixed.Quantile(0.99), P999: c.TargetFixed.Quantile(0.999),
		Ceiling: c.Ceiling.OpsPerS,
		CeilP50: c.CeilFixed.Quantile(0.50), CeilP99: c.CeilFixed.Quantile(0.99), CeilP999: c.CeilFixed.Quantile(0.999),
		Ratio: c.Ratio,
		Extra: map[string]any{
			"rounds":          c.Rounds,
			"fixed_rate_hz":   round(c.TargetFixed.FixedHz, 0),
			"errors":          c.Target.Errors + c.TargetFixed.Errors,
			"ceiling_p50_ms":  round(c.CeilFixed.Quantile(0.50), 3),
			"ceiling_p99_ms":  round(c.CeilFixed.Quantile(0.99), 3),
			"ceiling_p999_ms": round(c.CeilFixed.Quantile(0.999), 3),
			// Per round too: on shared cores one noisy round decides the merged p99.
			"p99_rounds_ms":         roundAll(c.FixedP99, 3),
			"p99_median_ms":         round(median(c.FixedP99), 3),
			"ceiling_p99_rounds_ms": roundAll(c.CeilFixedP99, 3),
			"ceiling_p99_median_ms": round(median(c.CeilFixedP99), 3),
		},
	}
}

func roundAll(v []float64, digits int) []float64 {
	out := make([]float64, len(v))
	for i := range v {
		out[i] = round(v[i], digits)
	}
	return out
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// JSON writes r as one JSON object on a line.
func (r Result) JSON(w io.Writer) error {
	m := map[string]any{
		"scenario":          r.Scenario,
		"ops":               r.Ops,
		"ops_per_s":         round(r.OpsPerS, 1),
		"p50_ms":            round(r.P50, 3),
		"p99_ms":            round(r.P99, 3),
		"p999_ms":           round(r.P999, 3),
		"ceiling_ops_per_s": round(r.Ceiling, 1),
		"ratio":             round(r.Ratio, 3),
		"lost":              r.Lost,
	}
	if r.NoP999 {
		m["p999_ms"] = nil
	}
	for k, v := range r.Extra {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// Table writes r for people.
func (r Result) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\t\tops/s\tp50 ms\tp99 ms\tp99.9 ms\t\n")
	p999 := strconv.FormatFloat(r.P999, 'f', 3, 64)
	if r.NoP999 {
		p999 = "-"
	}
	fmt.Fprintf(tw, "%s\tadsyn\t%.0f\t%.3f\t%.3f\t%s\t\n", r.Scenario, r.OpsPerS, r.P50, r.P99, p999)
	name := r.CeilingName
	if name == "" {
		name = "bare fasthttp"
	}
	if r.Ceiling > 0 && r.CeilP50 > 0 {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.3f\t%.3f\t%.3f\t\n", r.Scenario, name, r.Ceiling, r.CeilP50, r.CeilP99, r.CeilP999)
	} else if r.Ceiling > 0 {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t\t\t\t\n", r.Scenario, name, r.Ceiling)
	}
	tw.Flush()
	if r.Ceiling > 0 {
		fmt.Fprintf(w, "ratio adsyn/ceiling: %.2f", r.Ratio)
		if _, ok := r.Extra["rounds"]; ok {
			fmt.Fprint(w, " (median of rounds)")
		}
	}
	switch {
	case r.Lost < 0:
		fmt.Fprintf(w, "  lost: not checked\n")
	default:
		fmt.Fprintf(w, "  lost: %d\n", r.Lost)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Extra)) {
		v := r.Extra[k]
		if f, ok := v.(float64); ok {
			if f == float64(int64(f)) {
				v = int64(f)
			} else {
				v = strconv.FormatFloat(round(f, 3), 'f', -1, 64)
			}
		}
		fmt.Fprintf(w, "  %s: %v\n", k, v)
	}
}
