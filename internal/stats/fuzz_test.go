package stats

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
)

func FuzzParseCall(f *testing.F) {
	for _, s := range []string{
		`{"tracking_number":"+7 (495) 000-11-22","start":"2025-05-01T11:00:00+03:00","duration_s":61,"call_type":"inbound","caller_number":"+7 916 123-45-67"}`,
		`{"tracking_number":"+1 212 555 0000","start":"2025-05-01T11:00:00Z","duration_s":0,"call_type":"missed","caller_number":"anonymous"}`,
		`{"tracking_number":1}`, `[]`, `{"start":"x"}`, `{"duration_s":1e400}`, ``,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		e, number, err := ParseCall(body, now)
		if err != nil {
			var qe *queryError
			if !asQueryError(err, &qe) || qe.code == "" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if number == "" || !validCallType(e.Name) || e.Value < 0 || e.Value > maxCallDuration {
			t.Fatalf("accepted %+v %q", e, number)
		}
		if len(e.Area) > 12 {
			t.Fatalf("area %q keeps too much", e.Area)
		}
	})
}

func asQueryError(err error, qe **queryError) bool {
	q, ok := err.(*queryError)
	*qe = q
	return ok
}

func FuzzCallerArea(f *testing.F) {
	for _, s := range []string{"+7 495 123-45-67", "+74951234567", "+1 (212) 555-1234", "+44 20 7946 0958", "8 800 555 35 35", "", "+", "+0", "(((", "+999 1 2 3 4 5 6 7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		area, err := CallerArea(s)
		if err != nil || area == "" {
			return
		}
		digits := 0
		for _, r := range area {
			if unicode.IsDigit(r) {
				digits++
			}
		}
		all := 0
		for _, r := range s {
			if '0' <= r && r <= '9' {
				all++
			}
		}
		// Country code (at most 3) and area (at most 5), with at least 4
		// digits of the subscriber number left out.
		if digits > 8 || all-digits < 4 || !strings.HasPrefix(area, "+") {
			t.Fatalf("%q -> %q", s, area)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	r := &Record{Totals: Counters{Impressions: 5}, Seq: []uint64{1, 2}}
	r.Dims[DimSlot] = map[string]Counters{"top": {Impressions: 5}}
	f.Add(r.AppendMsgpack(nil))
	r.Clicks = bytes.Repeat([]byte{0xab}, 32)
	f.Add(r.AppendMsgpack(nil))
	f.Add([]byte{0x81, 0xa1, 'c', 0xc4, 0x05, 1, 2, 3, 4, 5})
	f.Add([]byte{0x81, 0xa1, 's', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := DecodeRecord(b)
		if err != nil {
			return
		}
		again, err := DecodeRecord(rec.AppendMsgpack(nil))
		if err != nil || again.Totals != rec.Totals || !bytes.Equal(again.Clicks, rec.Clicks) || len(rec.Clicks)%16 != 0 {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"from=2025-01-01&to=2025-01-31&by=hour", "breakdown=country&format=csv", "from=2025-01-01T00:00:00Z", "by=week", "to=%zz"} {
		f.Add(s)
	}
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(ScopeCampaign, "c1", v, now)
		if err != nil {
			if _, ok := err.(*queryError); !ok {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if q.To <= q.From || q.To-q.From > maxRange || !q.Daily && q.To-q.From > maxHourly {
			t.Fatalf("accepted %+v", q)
		}
	})
}
