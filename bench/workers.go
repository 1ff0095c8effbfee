package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/stats"
	"github.com/adsyn/adsyn/segments"
	"github.com/adsyn/adsyn/syndication"
)

// Segments measures the segment builder: events from ADSYN_EVENTS to visitor
// records in adsyn_segments, 100,000 distinct visitors, against bare
// compare-and-set KV writes on the same server as its ceiling.
func Segments(ctx context.Context, o Options, progress io.Writer) (Result, error) {
	o.defaults()
	nats, cleanup, err := startNATS(ctx)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	r, err := segments.RunBench(ctx, nats.conn, segments.BenchOptions{LatencyFor: o.Duration / 2, Log: o.Log}, progress)
	if err != nil {
		return Result{}, err
	}
	res, err := fromJSON(r)
	res.CeilingName = "bare KV CAS writes"
	return res, err
}

// fromJSON turns a scenario's own result, whose JSON follows the design's
// field names, into a Result: the standard fields, and the rest as extras.
func fromJSON(v any) (Result, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Result{}, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return Result{}, err
	}
	num := func(k string) float64 {
		f, _ := m[k].(float64)
		delete(m, k)
		return f
	}
	r := Result{Scenario: m["scenario"].(string)}
	delete(m, "scenario")
	r.Ops = int64(num("ops"))
	r.OpsPerS = num("ops_per_s")
	r.P50, r.P99, r.P999 = num("p50_ms"), num("p99_ms"), num("p999_ms")
	r.Ceiling = num("ceiling_ops_per_s")
	r.Ratio = num("ratio")
	r.Lost = int64(num("lost"))
	r.Extra = m
	return r, nil
}

// Syndication measures profile changes delivered as signed webhooks to five
// loopback partners, against bare signed POSTs to the same receivers.
func Syndication(ctx context.Context, o Options, progress io.Writer) (Result, error) {
	o.defaults()
	nats, cleanup, err := startNATS(ctx)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	r, err := syndication.RunBench(ctx, nats.conn, syndication.BenchOptions{Duration: o.Duration / 2, Log: o.Log}, progress)
	if err != nil {
		return Result{}, err
	}
	res, err := fromJSON(r)
	res.CeilingName = "bare signed POSTs"
	return res, err
}

// Stats measures the aggregator (events from the stream to hourly counters,
// exactly once) and the stats API answering a 30-day hourly query. Its
// ceiling is decoding alone: what the aggregator would reach if counting and
// writing were free.
func Stats(ctx context.Context, o Options, progress io.Writer) (Result, error) {
	o.defaults()
	nats, cleanup, err := startNATS(ctx)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	r, err := stats.RunBench(ctx, nats.conn, stats.BenchOptions{Log: o.Log}, progress)
	if err != nil {
		return Result{}, err
	}
	// The ceiling: reading and decoding the same events from the stream and
	// doing nothing else, measured now on the same server.
	fmt.Fprintln(progress, "stats: ceiling: reading and decoding the stream alone")
	start := time.Now()
	read, err := bus.ReadEvents(ctx, nats.conn.JS, 1, func(uint64, *event.Event) error { return nil })
	if err != nil {
		return Result{}, err
	}
	ceiling := float64(read) / time.Since(start).Seconds()
	return Result{
		Scenario: "stats",
		Ceiling:  ceiling, CeilingName: "read+decode only", Ratio: r.EventsPerS / ceiling,
		Ops: r.Events, OpsPerS: r.EventsPerS,
		P50: r.QueryP50Ms, P99: r.QueryP99Ms, P999: r.QueryMaxMs,
		Lost: r.Lost,
		Extra: map[string]any{
			"latency_is":          "the stats API answering a 30-day hourly query (p99.9 column: the slowest)",
			"query_hours":         r.QueryHours,
			"query_records":       r.QueryRecords,
			"queries":             r.Queries,
			"query_body_bytes":    r.QueryBodyBytes,
			"record_writes":       r.RecordWrites,
			"flushes":             r.Flushes,
			"publish_ops_per_s":   round(r.PublishPerS, 0),
			"aggregation_seconds": round(r.Seconds, 3),
		},
	}, nil
}
