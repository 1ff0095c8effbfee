package stats

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/stats/tally"
)

// Range limits, in hours.
const (
	maxHourly = 93 * 24  // by=hour
	maxRange  = 400 * 24 // by=day
)

// Query is what a stats request asks for.
type Query struct {
	Scope     Scope
	ID        string
	From, To  int64 // unix hours, To exclusive
	Daily     bool
	Breakdown Dim
	ByDim     bool // Breakdown is set
	CSV       bool
}

// queryError is a bad parameter: its code and message go to the client.
type queryError struct{ code, msg string }

func (e *queryError) Error() string { return e.msg }

func badParam(code, format string, args ...any) error {
	return &queryError{code: code, msg: fmt.Sprintf(format, args...)}
}

// parseTime accepts RFC 3339 or YYYY-MM-DD; a date means the start of that
// day (UTC), or its end when end is true.
func parseTime(s string, end bool) (time.Time, error) {
	if len(s) > 64 {
		return time.Time{}, errors.New("too long")
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 (2025-01-31T00:00:00Z) or YYYY-MM-DD")
	}
	return t, nil
}

// ParseRange reads from and to: to defaults to now, from to seven days
// before to. The result is in unix hours, covering every hour that starts
// before to.
func ParseRange(v url.Values, now time.Time) (from, to int64, err error) {
	toT := now
	if s := v.Get("to"); s != "" {
		if toT, err = parseTime(s, true); err != nil {
			return 0, 0, badParam("invalid_to", "to: %v", err)
		}
	}
	fromT := toT.Add(-7 * 24 * time.Hour)
	if s := v.Get("from"); s != "" {
		if fromT, err = parseTime(s, false); err != nil {
			return 0, 0, badParam("invalid_from", "from: %v", err)
		}
	}
	from = tally.FloorDiv(fromT.Unix(), 3600)
	to = -tally.FloorDiv(-toT.Unix(), 3600) // ceiling
	if to <= from {
		return 0, 0, badParam("invalid_range", "from must be before to")
	}
	if to-from > maxRange {
		return 0, 0, badParam("range_too_long", "the range may span at most %d days", maxRange/24)
	}
	return from, to, nil
}

// ParseQuery reads a stats request's parameters.
func ParseQuery(s Scope, id string, v url.Values, now time.Time) (Query, error) {
	q := Query{Scope: s, ID: id}
	if !ValidID(id) {
		return q, badParam("invalid_id", "the id must be 1-64 letters, digits, '_' or '-'")
	}
	for k := range v {
		switch k {
		case "from", "to", "by", "breakdown", "format":
		default:
			return q, badParam("unknown_parameter", "unknown parameter %q (from, to, by, breakdown, format)", k)
		}
	}
	var err error
	if q.From, q.To, err = ParseRange(v, now); err != nil {
		return q, err
	}
	switch by := v.Get("by"); by {
	case "", "day":
		q.Daily = true
	case "hour":
		if q.To-q.From > maxHourly {
			return q, badParam("range_too_long", "by=hour spans at most %d days; use by=day", maxHourly/24)
		}
	default:
		return q, badParam("invalid_by", "by must be hour or day")
	}
	if b := v.Get("breakdown"); b != "" {
		d, ok := ParseDim(b)
		if !ok || !s.Has(d) {
			return q, badParam("invalid_breakdown", "breakdown must be one of %s", strings.Join(scopeDims(s), ", "))
		}
		q.Breakdown, q.ByDim = d, true
	}
	switch f := v.Get("format"); f {
	case "", "json":
	case "csv":
		q.CSV = true
	default:
		return q, badParam("invalid_format", "format must be json or csv")
	}
	return q, nil
}

// scopeDims names the dimensions of scope s's records.
func scopeDims(s Scope) []string {
	var out []string
	for d := range tally.NumDims {
		if s.Has(d) {
			out = append(out, d.String())
		}
	}
	return out
}

// scopeNoun is what a record of scope s counts for, in messages.
func scopeNoun(s Scope) string {
	if s == ScopeSite {
		return "site"
	}
	return "campaign"
}

// Metrics are the figures shown for a total, a point or a value.
type Metrics struct {
	Impressions    int64   `json:"impressions"`
	Viewable       int64   `json:"viewable"`
	ViewableRate   float64 `json:"viewable_rate"`
	Clicks         int64   `json:"clicks"`
	CTR            float64 `json:"ctr"`
	Conversions    int64   `json:"conversions"`
	ConversionRate float64 `json:"conversion_rate"` // per click
	Calls          int64   `json:"calls"`
	Spend          float64 `json:"spend"`
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(float64(a)/float64(b)*1e6) / 1e6
}

// MetricsOf derives the rates of c.
func MetricsOf(c Counters) Metrics {
	return Metrics{
		Impressions: c.Impressions, Viewable: c.Viewable, ViewableRate: ratio(c.Viewable, c.Impressions),
		Clicks: c.Clicks, CTR: ratio(c.Clicks, c.Impressions),
		Conversions: c.Conversions, ConversionRate: ratio(c.Conversions, c.Clicks),
		Calls: c.Calls, Spend: float64(c.SpendMicros) / 1e6,
	}
}

// Row is one point of a series: a bucket, and with a breakdown one value.
type Row struct {
	Time  time.Time `json:"time"`
	Value *string   `json:"value,omitempty"`
	Metrics
}

// ValueTotal is one breakdown value's total over the range.
type ValueTotal struct {
	Value string `json:"value"`
	Metrics
}

// Report is the answer to a Query.
type Report struct {
	Scope     string       `json:"scope"`
	ID        string       `json:"id"`
	From      time.Time    `json:"from"`
	To        time.Time    `json:"to"`
	By        string       `json:"by"`
	Breakdown string       `json:"breakdown,omitempty"`
	Totals    Metrics      `json:"totals"`
	Series    []Row        `json:"series"`
	Values    []ValueTotal `json:"values,omitempty"`
}

func hourTime(h int64) time.Time { return time.Unix(h*3600, 0).UTC() }

// bucketOf returns the first hour of h's bucket.
func (q *Query) bucketOf(h int64) int64 {
	if q.Daily {
		return tally.FloorDiv(h, 24) * 24
	}
	return h
}

// Build turns the records of a range (by unix hour) into a report. Every
// bucket appears in the series; with a breakdown only non-empty points do.
func Build(q Query, recs map[int64]*Record) Report {
	r := Report{Scope: scopeNoun(q.Scope), ID: q.ID, From: hourTime(q.From), To: hourTime(q.To), By: "hour", Series: []Row{}}
	if q.Daily {
		r.By = "day"
	}
	var total Counters
	type point struct {
		bucket int64
		value  string
	}
	points := map[point]*Counters{}
	values := map[string]*Counters{}
	for h, rec := range recs {
		if h < q.From || h >= q.To {
			continue
		}
		total.Add(&rec.Totals)
		b := q.bucketOf(h)
		if !q.ByDim {
			c := points[point{bucket: b}]
			if c == nil {
				c = &Counters{}
				points[point{bucket: b}] = c
			}
			c.Add(&rec.Totals)
			continue
		}
		for v, vc := range rec.Dims[q.Breakdown] {
			c := points[point{b, v}]
			if c == nil {
				c = &Counters{}
				points[point{b, v}] = c
			}
			c.Add(&vc)
			t := values[v]
			if t == nil {
				t = &Counters{}
				values[v] = t
			}
			t.Add(&vc)
		}
	}
	r.Totals = MetricsOf(total)
	if !q.ByDim {
		for b := q.bucketOf(q.From); b < q.To; b = next(q, b) {
			var c Counters
			if p := points[point{bucket: b}]; p != nil {
				c = *p
			}
			r.Series = append(r.Series, Row{Time: hourTime(b), Metrics: MetricsOf(c)})
		}
		return r
	}
	r.Breakdown = q.Breakdown.String()
	keys := make([]point, 0, len(points))
	for k := range points {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b point) int {
		return cmp.Or(cmp.Compare(a.bucket, b.bucket), strings.Compare(a.value, b.value))
	})
	for _, k := range keys {
		v := k.value
		r.Series = append(r.Series, Row{Time: hourTime(k.bucket), Value: &v, Metrics: MetricsOf(*points[k])})
	}
	for v, c := range values {
		r.Values = append(r.Values, ValueTotal{Value: v, Metrics: MetricsOf(*c)})
	}
	slices.SortFunc(r.Values, func(a, b ValueTotal) int {
		return cmp.Or(cmp.Compare(b.Impressions, a.Impressions), strings.Compare(a.Value, b.Value))
	})
	return r
}

func next(q Query, b int64) int64 {
	if q.Daily {
		return b + 24
	}
	return b + 1
}

// WriteCSV writes the report's series as CSV with a header line.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := []string{"time"}
	if r.Breakdown != "" {
		head = append(head, r.Breakdown)
	}
	head = append(head, "impressions", "viewable", "viewable_rate", "clicks", "ctr", "conversions", "conversion_rate", "calls", "spend")
	if err := cw.Write(head); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, row := range r.Series {
		line := []string{row.Time.Format(time.RFC3339)}
		if r.Breakdown != "" {
			line = append(line, csvSafe(*row.Value))
		}
		m := row.Metrics
		line = append(line, i(m.Impressions), i(m.Viewable), f(m.ViewableRate), i(m.Clicks), f(m.CTR),
			i(m.Conversions), f(m.ConversionRate), i(m.Calls), f(m.Spend))
		if err := cw.Write(line); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe keeps a spreadsheet from reading a value as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// ReadRange returns the records of scope and id for hours [from, to),
// decoding only the dimensions in want, through one KV watch that stops
// after the initial values. Its cost grows with the id's whole history.
func ReadRange(ctx context.Context, kv jetstream.KeyValue, s Scope, id string, from, to int64, want ...Dim) (map[int64]*Record, error) {
	var mask tally.DimMask
	for _, d := range want {
		mask |= tally.MaskOf(d)
	}
	return readRange(ctx, kv, s, id, from, to, mask)
}

func readRange(ctx context.Context, kv jetstream.KeyValue, s Scope, id string, from, to int64, want tally.DimMask) (map[int64]*Record, error) {
	if !ValidID(id) {
		return nil, ErrBadID
	}
	// One wildcard watch on the id's keys, filtered here by hour: a watch on
	// the range's exact keys costs the server a check of every pair of
	// filter subjects, ten times slower for a month.
	w, err := kv.Watch(ctx, s.Prefix()+"."+id+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("stats: watch %s %s: %w", s.Prefix(), id, err)
	}
	defer func() { _ = w.Stop() }()
	out := map[int64]*Record{}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("stats: watch %s %s ended early", s.Prefix(), id)
			}
			if e == nil {
				return out, nil
			}
			h, ok := tally.ParseHour(e.Key())
			if !ok || h < from || h >= to {
				continue
			}
			rec, err := tally.DecodeRecordDims(e.Value(), want)
			if err != nil {
				return nil, fmt.Errorf("stats: %s: %w", e.Key(), err)
			}
			out[h] = rec
		case <-ctx.Done():
			return nil, fmt.Errorf("stats: read %s %s: %w", s.Prefix(), id, ctx.Err())
		}
	}
}
