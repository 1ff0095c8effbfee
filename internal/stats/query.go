package stats

import (
	"cmp"
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

	"github.com/adsyn/adsyn/internal/stats/audience"
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
	// Audience is a site's audience breakdown (page, referrer, ...); with
	// language, country and device a site gets both.
	Audience   audience.Dimension
	ByAudience bool
	CSV        bool
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
		ok = ok && s.Has(d)
		ad, aok := audience.ParseDimension(b)
		aok = aok && s == ScopeSite
		if !ok && !aok {
			return q, badParam("invalid_breakdown", "breakdown must be one of %s", strings.Join(scopeDims(s), ", "))
		}
		q.Breakdown, q.ByDim = d, ok
		q.Audience, q.ByAudience = ad, aok
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

// scopeDims names the breakdowns of scope s: its records' dimensions, and
// for a site its audience's.
func scopeDims(s Scope) []string {
	var out []string
	for d := range tally.NumDims {
		if s.Has(d) {
			out = append(out, d.String())
		}
	}
	if s == ScopeSite {
		for d := range audience.NumDimensions {
			if !slices.Contains(out, d.String()) {
				out = append(out, d.String())
			}
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
	*Audience              // a site's; absent for a campaign
	Reach          *Reach  `json:"reach,omitempty"` // a campaign's, in totals and series
}

// Reach is a campaign's identifiable visitors with an impression (distinct
// consented visitor ids, estimated within 2%) and their average frequency:
// the impressions they had, per visitor.
type Reach struct {
	Visitors  uint64  `json:"visitors"`
	Frequency float64 `json:"frequency"`
}

func reachOf(v *audience.Visitors, imps int64) *Reach {
	n := v.Estimate()
	r := &Reach{Visitors: n}
	if n > 0 {
		r.Frequency = math.Round(float64(imps)/float64(n)*100) / 100
	}
	return r
}

// Audience is a site's own traffic. Visitors are identifiable visitors:
// the distinct visitor ids of consented pageviews, searches and custom
// events, estimated within 2% (HyperLogLog); a visitor without consent to
// an id is counted in pageviews, never in visitors. A breakdown value has
// no visitors of its own.
type Audience struct {
	Pageviews uint64  `json:"pageviews"`
	Visitors  *uint64 `json:"visitors,omitempty"`
	Searches  uint64  `json:"searches"`
	Events    uint64  `json:"events"`
}

// audienceOf returns the figures of h (nil: none), with its visitors.
func audienceOf(h *audience.Hour) *Audience {
	if h == nil {
		return &Audience{Visitors: new(uint64)}
	}
	v := h.Visitors.Estimate()
	return &Audience{Pageviews: h.Pageviews, Visitors: &v, Searches: h.Searches, Events: h.Events}
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
// A site's figures carry its audience.
func Build(q Query, recs map[int64]*Record) Report { return build(q, recs, nil) }

// build is Build with the visitors of whole days already merged (by the
// day's first hour): those days' hourly sketches are not merged again.
func build(q Query, recs map[int64]*Record, days map[int64]*daySum) Report {
	r := Report{Scope: scopeNoun(q.Scope), ID: q.ID, From: hourTime(q.From), To: hourTime(q.To), By: "hour", Series: []Row{}}
	if q.Daily {
		r.By = "day"
	}
	site := q.Scope == ScopeSite
	type point struct {
		bucket int64
		value  string
	}
	type acc struct {
		c     Counters
		aud   *audience.Hour // a series point's audience
		n     uint64         // a breakdown value's pageviews (custom events by name)
		reach audience.Visitors
		imps  int64 // the impressions of reach's visitors
	}
	at := func(m map[point]*acc, k point) *acc {
		a := m[k]
		if a == nil {
			a = &acc{}
			m[k] = a
		}
		return a
	}
	var total Counters
	var totalAud audience.Hour
	var totalReach audience.Visitors
	var totalReachImps int64
	points := map[point]*acc{}
	values := map[point]*acc{} // bucket 0
	// An hourly audience breakdown has a point per hour and value: tens of
	// thousands over a month. Each hour is one record, so its points are
	// listed as they are, not summed through a map.
	type hourPoint struct {
		point
		n uint64
	}
	var hourly []hourPoint
	type span struct {
		hour   int64
		lo, hi int // of hourly
	}
	var spans []span // each hour's points, contiguous in hourly
	listHours := q.ByAudience && !q.Daily
	for h, rec := range recs {
		if h < q.From || h >= q.To {
			continue
		}
		// Sketches of one precision always merge; a summed day's are
		// merged once, below.
		summed := days[tally.FloorDiv(h, 24)*24] != nil
		total.Add(&rec.Totals)
		if rec.Audience != nil {
			totalAud.AddCounts(rec.Audience)
			if !summed {
				_ = totalAud.Visitors.Merge(&rec.Audience.Visitors)
			}
		}
		if rec.Reach != nil {
			if !summed {
				_ = totalReach.Merge(rec.Reach)
			}
			totalReachImps += rec.ReachImpressions
		}
		b := q.bucketOf(h)
		if !q.ByDim && !q.ByAudience {
			a := at(points, point{bucket: b})
			a.c.Add(&rec.Totals)
			daySummed := summed && q.Daily // the bucket is the summed day
			if rec.Audience != nil {
				if a.aud == nil {
					a.aud = &audience.Hour{}
				}
				a.aud.AddCounts(rec.Audience)
				if !daySummed {
					_ = a.aud.Visitors.Merge(&rec.Audience.Visitors)
				}
			}
			if rec.Reach != nil {
				if !daySummed {
					_ = a.reach.Merge(rec.Reach)
				}
				a.imps += rec.ReachImpressions
			}
			continue
		}
		if q.ByDim {
			for v, vc := range rec.Dims[q.Breakdown] {
				at(points, point{b, v}).c.Add(&vc)
				at(values, point{0, v}).c.Add(&vc)
			}
		}
		if listHours && rec.Audience != nil {
			bd := &rec.Audience.Breakdowns[q.Audience]
			other := bd.Other
			spans = append(spans, span{hour: b, lo: len(hourly)})
			for v, n := range bd.Counts {
				if v == audience.OtherValue { // a value spelt so is one point with Other
					other += n
					continue
				}
				hourly = append(hourly, hourPoint{point{b, v}, n})
				at(values, point{0, v}).n += n
			}
			if other > 0 {
				hourly = append(hourly, hourPoint{point{b, audience.OtherValue}, other})
				at(values, point{0, audience.OtherValue}).n += other
			}
			spans[len(spans)-1].hi = len(hourly)
		} else if q.ByAudience && rec.Audience != nil {
			bd := &rec.Audience.Breakdowns[q.Audience]
			for v, n := range bd.Counts {
				at(points, point{b, v}).n += n
				at(values, point{0, v}).n += n
			}
			if bd.Other > 0 {
				at(points, point{b, audience.OtherValue}).n += bd.Other
				at(values, point{0, audience.OtherValue}).n += bd.Other
			}
		}
	}
	for d, sum := range days {
		if sum.visitors != nil {
			_ = totalAud.Visitors.Merge(sum.visitors)
		}
		if sum.reach != nil {
			_ = totalReach.Merge(sum.reach)
		}
		if a := points[point{bucket: d}]; a != nil && q.Daily {
			if sum.visitors != nil && a.aud != nil {
				_ = a.aud.Visitors.Merge(sum.visitors)
			}
			if sum.reach != nil {
				_ = a.reach.Merge(sum.reach)
			}
		}
	}
	// metrics derives a point's or value's figures.
	metrics := func(a *acc, withVisitors bool) Metrics {
		m := MetricsOf(a.c)
		switch {
		case !site && withVisitors:
			m.Reach = reachOf(&a.reach, a.imps)
		case !site:
		case withVisitors:
			m.Audience = audienceOf(a.aud)
		case q.ByAudience && q.Audience == audience.EventName:
			m.Audience = &Audience{Events: a.n}
		default:
			m.Audience = &Audience{Pageviews: a.n}
		}
		return m
	}
	r.Totals = metrics(&acc{c: total, aud: &totalAud, reach: totalReach, imps: totalReachImps}, true)
	if !q.ByDim && !q.ByAudience {
		for b := q.bucketOf(q.From); b < q.To; b = next(q, b) {
			a := points[point{bucket: b}]
			if a == nil {
				a = &acc{}
			}
			r.Series = append(r.Series, Row{Time: hourTime(b), Metrics: metrics(a, true)})
		}
		return r
	}
	if q.ByAudience {
		r.Breakdown = q.Audience.String()
	} else {
		r.Breakdown = q.Breakdown.String()
	}
	byPoint := func(a, b point) int {
		return cmp.Or(cmp.Compare(a.bucket, b.bucket), strings.Compare(a.value, b.value))
	}
	if listHours {
		// Hours in order, then each hour's values: tens of thousands of
		// points sorted as hundreds of short runs. One allocation holds
		// every point's figures.
		slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.hour, b.hour) })
		auds := make([]Audience, len(hourly))
		r.Series = make([]Row, 0, len(hourly))
		for _, sp := range spans {
			run := hourly[sp.lo:sp.hi]
			slices.SortFunc(run, func(a, b hourPoint) int { return strings.Compare(a.value, b.value) })
			t := hourTime(sp.hour)
			for i := range run {
				a := &auds[sp.lo+i]
				if q.Audience == audience.EventName {
					a.Events = run[i].n
				} else {
					a.Pageviews = run[i].n
				}
				r.Series = append(r.Series, Row{Time: t, Value: &run[i].value, Metrics: Metrics{Audience: a}})
			}
		}
	}
	keys := make([]point, 0, len(points))
	for k := range points {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, byPoint)
	for _, k := range keys {
		v := k.value
		r.Series = append(r.Series, Row{Time: hourTime(k.bucket), Value: &v, Metrics: metrics(points[k], false)})
	}
	for k, a := range values {
		r.Values = append(r.Values, ValueTotal{Value: k.value, Metrics: metrics(a, false)})
	}
	slices.SortFunc(r.Values, func(a, b ValueTotal) int {
		return cmp.Or(cmp.Compare(b.Impressions, a.Impressions), cmp.Compare(b.audienceCount(), a.audienceCount()), strings.Compare(a.Value, b.Value))
	})
	return r
}

// audienceCount is a value's pageviews or custom events, for sorting.
func (v *ValueTotal) audienceCount() uint64 {
	if v.Audience == nil {
		return 0
	}
	return v.Pageviews + v.Events
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
	site := r.Scope == scopeNoun(ScopeSite)
	if site {
		head = append(head, "pageviews", "visitors", "searches", "events")
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	for _, row := range r.Series {
		line := []string{row.Time.Format(time.RFC3339)}
		if r.Breakdown != "" {
			line = append(line, csvSafe(*row.Value))
		}
		m := row.Metrics
		line = append(line, i(m.Impressions), i(m.Viewable), f(m.ViewableRate), i(m.Clicks), f(m.CTR),
			i(m.Conversions), f(m.ConversionRate), i(m.Calls), f(m.Spend))
		if site {
			a := m.Audience
			if a == nil {
				a = &Audience{}
			}
			visitors := "" // a breakdown value has no visitors of its own
			if a.Visitors != nil {
				visitors = u(*a.Visitors)
			}
			line = append(line, u(a.Pageviews), visitors, u(a.Searches), u(a.Events))
		}
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
