package stats

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// reflectJSON is the oracle: what api.WriteJSON writes for v.
func reflectJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReportJSONAsEncodingJSON: Report.AppendJSON writes the bytes that
// encoding/json writes, for every shape of figures and awkward strings.
func TestReportJSONAsEncodingJSON(t *testing.T) {
	one, big := uint64(1), uint64(1<<40)
	weird := "a\"b\\c\n\r\t\b\f\x01<>&\u2028\u2029é\xff/é" + "\x7f"
	floats := []float64{0, 1, 0.05, 1e-7, -3.5e-9, 123456.789, 1e21, 2.5e22, math.SmallestNonzeroFloat64, 0.000001}
	var rows []Row
	var vals []ValueTotal
	for i := range 3000 { // past WriteJSON's chunk
		floats = append(floats, float64(i)/7)
	}
	for i, f := range floats {
		m := Metrics{Impressions: int64(i) * 1000, Viewable: -int64(i), ViewableRate: f, Clicks: 7, CTR: -f, Conversions: 1, ConversionRate: f / 3, Calls: 2, Spend: f * 1e6}
		switch i % 4 {
		case 1:
			m.Audience = &Audience{Pageviews: 10, Visitors: &one, Searches: 2, Events: 3}
		case 2:
			m.Audience = &Audience{Pageviews: big}
		case 3:
			m.Reach = &Reach{Visitors: big, Frequency: f}
		}
		v := weird[:i%len(weird)]
		if i >= len(weird) {
			v = time.Duration(i).String()
		}
		rows = append(rows, Row{Time: time.Unix(int64(i)*3600, 0).UTC(), Metrics: m})
		rows = append(rows, Row{Time: time.Date(2026, 12, 6, i, 0, 0, 0, time.UTC), Value: &v, Metrics: m})
		vals = append(vals, ValueTotal{Value: weird[min(i, len(weird)):], Metrics: m})
	}
	for _, r := range []Report{
		{Scope: "site", ID: "s-1", From: time.Unix(0, 0).UTC(), To: time.Unix(3600*24, 0).UTC(), By: "hour", Breakdown: "page", Totals: rows[3].Metrics, Series: rows, Values: vals},
		{Scope: "campaign", ID: weird, By: "day", Series: []Row{}},
		{Scope: "campaign", Series: nil, Values: []ValueTotal{}},
	} {
		want := reflectJSON(t, r)
		if got := r.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
		var chunks bytes.Buffer
		if err := r.WriteJSON(&chunks); err != nil || !bytes.Equal(chunks.Bytes(), want) {
			t.Errorf("written in chunks: %v\n%s", err, chunks.Bytes())
		}
	}
}
