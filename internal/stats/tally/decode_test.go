package tally

import (
	"fmt"
	"math"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/stats/audience"
)

// decodeOracle is what the aggregator did before DecodeFacts: msgpack/v5
// decodes each whole event, and FactOf keeps what counts.
func decodeOracle(body []byte, fallbackMS int64) ([]Fact, int, error) {
	var facts []Fact
	n, err := event.DecodeBatch(body, func(e *event.Event) error {
		if f, ok := FactOf(e, fallbackMS); ok {
			facts = append(facts, f)
		}
		return nil
	})
	return facts, n, err
}

func decodeSeeds() [][]byte {
	all := []event.Event{
		{ID: event.ID{1, 2, 3}, TS: 1_700_000_000_000, Kind: event.KindPageview, Visitor: "v1", Site: "s1",
			URL: "https://p.example/a?utm_source=x", Referrer: "https://r.example/", Lang: "ru", Country: "DE",
			Device: event.Device{Type: "mobile", OS: "Android", OSVersion: "14", Model: "Pixel", Browser: "Chrome"},
			IP:     "10.0.0.0", User: "u1", Categories: []string{"plumbing", "taps"}, NewVisitor: true},
		{ID: event.ID{4}, TS: 1_700_000_100_000, Kind: event.KindImpression, Visitor: "v2", Site: "s1", Slot: "top",
			Campaign: "c1", Creative: "c1-0", Value: 0.002, Lang: "en"},
		{ID: event.ID{5}, TS: -5, Kind: event.KindClick, Site: "s2", Campaign: "c2", Creative: "c2-1"},
		{Kind: event.KindConversion, Campaign: "c3", Value: 12.5, Name: "lead"},
		{Kind: event.KindCustom, Site: "s3", Name: "signup", URL: "https://p.example/x"},
		{Kind: event.KindSearch, Site: "s3", Query: "plumber", Visitor: "v9"},
		{Kind: event.KindCall, Campaign: "c4", Area: "+7 495", Value: 61},
		{Kind: event.KindImpression, Campaign: "bad id with spaces", Site: "s4"},
		{Kind: event.KindError, Site: "s1"},
	}
	var out [][]byte
	var batch []byte
	for i := range all {
		one := all[i].AppendMsgpack(nil)
		out = append(out, one)
		batch = append(batch, one...)
	}
	out = append(out, batch, batch[:len(batch)-3], append(append([]byte{}, batch...), 0xc1))
	// Forms another producer may use: a nil device, a float32 value, a
	// negative fixint kind, an int8 timestamp, a str id.
	out = append(out,
		[]byte{0x83, 0xa1, 'k', 0x03, 0xa1, 's', 0xa2, 's', '1', 0xa1, 'd', 0xc0},
		[]byte{0x84, 0xa1, 'k', 0x03, 0xa2, 'c', 'a', 0xa2, 'c', '1', 0xa3, 'v', 'a', 'l', 0xca, 0x3f, 0x80, 0, 0, 0xa2, 't', 's', 0xd0, 0x80},
		[]byte{0x83, 0xa1, 'k', 0xff, 0xa2, 'i', 'd', 0xa2, 'a', 'b', 0xa1, 's', 0xa2, 's', '1'},
	)
	return out
}

// TestDecodeFactsAgreesWithMsgpack: the hand-written reader gives the
// facts, the event count and the fault of decoding whole events.
func TestDecodeFactsAgreesWithMsgpack(t *testing.T) {
	for i, body := range decodeSeeds() {
		checkDecode(t, i, body)
	}
}

func checkDecode(t *testing.T, i int, body []byte) {
	t.Helper()
	want, wn, werr := decodeOracle(body, 42)
	got, gn, gerr := DecodeFacts(body, 42, nil)
	if gn != wn || (gerr == nil) != (werr == nil) || len(got) != len(want) {
		t.Fatalf("#%d: %d events, %d facts, err %v; msgpack: %d events, %d facts, err %v", i, gn, len(got), gerr, wn, len(want), werr)
	}
	for j := range got {
		g, w := got[j], want[j]
		if g.value != w.value && !(math.IsNaN(g.value) && math.IsNaN(w.value)) {
			t.Fatalf("#%d fact %d: value %v, want %v", i, j, g.value, w.value)
		}
		g.value, w.value = 0, 0
		if g != w {
			t.Fatalf("#%d fact %d:\n got %+v\nwant %+v", i, j, g, w)
		}
	}
}

func FuzzDecodeFacts(f *testing.F) {
	for _, b := range decodeSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecode(t, 0, body)
	})
}

func BenchmarkDecodeFacts(b *testing.B) {
	body := decodeSeeds()[len(decodeSeeds())-6]
	var facts []Fact
	for b.Loop() {
		facts, _, _ = DecodeFacts(body, 0, facts[:0])
	}
}

func BenchmarkDecodeOracle(b *testing.B) {
	body := decodeSeeds()[len(decodeSeeds())-6]
	for b.Loop() {
		_, _, _ = decodeOracle(body, 0)
	}
}

// TestDecodeHourAgreesWithMsgpack: the hand-written reader of a stored
// audience hour gives what msgpack/v5 gives, and with a mask only the
// breakdown asked for.
func TestDecodeHourAgreesWithMsgpack(t *testing.T) {
	var h audience.Hour
	for i := range 4000 {
		h.Add(&event.Event{Kind: event.KindPageview, Visitor: fmt.Sprint("v", i%2500),
			URL: fmt.Sprintf("https://p.example/%d?utm_source=s%d", i%130, i%9), Referrer: fmt.Sprintf("https://r%d.example/", i%70),
			Lang: fmt.Sprint("l", i%5), Device: event.Device{Type: "mobile", Browser: fmt.Sprint("b", i%3)}})
		if i%10 == 0 {
			h.Add(&event.Event{Kind: event.KindCustom, Name: fmt.Sprint("goal", i%60), Visitor: "x"})
			h.Add(&event.Event{Kind: event.KindSearch})
		}
	}
	for _, hour := range []*audience.Hour{&h, {}, {Pageviews: 3}} {
		b, err := msgpack.Marshal(hour)
		if err != nil {
			t.Fatal(err)
		}
		var want, got, page audience.Hour
		if err := msgpack.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if err := decodeHour(b, &got, WithAudience|AllAudience); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Breakdowns) != fmt.Sprint(want.Breakdowns) || got.Pageviews != want.Pageviews || got.Searches != want.Searches ||
			got.Events != want.Events || got.Visitors.Estimate() != want.Visitors.Estimate() {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
		if err := decodeHour(b, &page, WithAudience|AudienceMaskOf(audience.Page)); err != nil {
			t.Fatal(err)
		}
		for d := range page.Breakdowns {
			w := audience.Breakdown{}
			if d == int(audience.Page) {
				w = want.Breakdowns[d]
			}
			if fmt.Sprint(page.Breakdowns[d]) != fmt.Sprint(w) {
				t.Errorf("%s: %v, want %v", audience.Dimension(d), page.Breakdowns[d], w)
			}
		}
		if page.Pageviews != want.Pageviews || page.Visitors.Estimate() != want.Visitors.Estimate() {
			t.Errorf("page only: %+v", page)
		}
	}
	if h.Breakdowns[audience.Page].Other == 0 || len(h.Breakdowns[audience.EventName].Counts) == 0 {
		t.Fatal("the hour fills too little to test")
	}
	// Corrupt bytes are refused, not read past.
	b, _ := msgpack.Marshal(&h)
	for _, cut := range []int{1, len(b) / 2, len(b) - 1} {
		var x audience.Hour
		if err := decodeHour(b[:cut], &x, WithAudience|AllAudience); err == nil {
			t.Errorf("%d of %d bytes decoded", cut, len(b))
		}
	}
}
