package tally

import (
	"maps"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/event"
)

func TestRecordRoundTrip(t *testing.T) {
	r := &Record{Totals: Counters{Impressions: 1 << 40, Viewable: 3, Clicks: 200, Conversions: 70000, Calls: 1, SpendMicros: -5}, Seq: []uint64{0, 1, 1 << 33}}
	r.Dims[DimCountry] = map[string]Counters{"RU": {Impressions: 1}, "": {Clicks: 2}}
	r.Dims[DimSite] = map[string]Counters{"s1": {Impressions: 1 << 40}}
	got, err := DecodeRecord(r.AppendMsgpack(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got.Totals != r.Totals || len(got.Seq) != 3 || got.Seq[2] != 1<<33 {
		t.Errorf("got %+v", got)
	}
	for d := range r.Dims {
		if !maps.Equal(got.Dims[d], r.Dims[d]) {
			t.Errorf("%s: %v, want %v", Dim(d), got.Dims[d], r.Dims[d])
		}
	}
	// Only the wanted dimension is decoded.
	part, err := DecodeRecordDims(r.AppendMsgpack(nil), MaskOf(DimSite))
	if err != nil || part.Dims[DimCountry] != nil || len(part.Dims[DimSite]) != 1 || part.Totals != r.Totals {
		t.Errorf("partial decode: %+v %v", part, err)
	}
	if _, err := DecodeRecord([]byte{0x81, 0xa1, 't'}); err == nil {
		t.Error("truncated record decoded")
	}
}

// cpmOf prices every campaign at a CPM of 2.5.
func cpmOf(string) (float64, bool) { return 2.5, true }

func TestKey(t *testing.T) {
	at := time.Date(2025, 3, 9, 7, 59, 59, 0, time.FixedZone("x", 3*3600))
	if k := Key(ScopeCampaign, "c1", at); k != "camp.c1.2025030904" {
		t.Errorf("key %s", k)
	}
	if h, ok := ParseHour("site.s.2025030904"); !ok || h != time.Date(2025, 3, 9, 4, 0, 0, 0, time.UTC).Unix()/3600 {
		t.Errorf("parse hour: %v %v", h, ok)
	}
}

func TestTallyAndMerge(t *testing.T) {
	base := time.Date(2025, 5, 1, 10, 30, 0, 0, time.UTC).UnixMilli()
	events := []event.Event{
		{Kind: event.KindImpression, TS: base, Campaign: "c", Site: "s", Creative: "k", Country: "RU", Value: 0.003},
		{Kind: event.KindImpression, TS: base, Campaign: "c", Site: "s", Creative: "k", Country: "DE"}, // CPM 2.5
		{Kind: event.KindClick, TS: base - 3600_000, Campaign: "c", Site: "s", Country: "RU"},          // an hour late
		{Kind: event.KindCall, TS: base, Campaign: "c"},
		{Kind: event.KindPageview, TS: base, Site: "s"},                       // not Counted
		{Kind: event.KindImpression, TS: base, Campaign: "bad.ID", Site: "s"}, // site only
	}
	tl := New(4, cpmOf)
	for i := range events {
		if f, ok := FactOf(&events[i], 0); ok {
			tl.Add(&f, 1, uint64(10+i), nil)
		}
	}
	hour := base / 3600_000
	camp := tl.Get(RecKey{ScopeCampaign, "c", hour})
	if camp == nil || camp.Impressions != 2 || camp.SpendMicros != 3000+2500 || camp.Calls != 1 || camp.Conversions != 1 {
		t.Fatalf("campaign Delta: %+v", camp)
	}
	if camp.Seqs[1] != (SeqRange{10, 13}) {
		t.Errorf("seq range %+v", camp.Seqs[1])
	}
	late := tl.Get(RecKey{ScopeCampaign, "c", hour - 1})
	if late == nil || late.Clicks != 1 {
		t.Errorf("late click: %+v", late)
	}
	site := tl.Get(RecKey{ScopeSite, "s", hour})
	if site == nil || site.Impressions != 3 {
		t.Errorf("site Delta: %+v", site)
	}
	var r Record
	r.Merge(ScopeCampaign, camp, tl.Names(), 3, NewFold())
	if r.Dims[DimCountry]["RU"].Impressions != 1 || r.Dims[DimCountry]["DE"].Impressions != 1 || r.Dims[DimCountry][""].Calls != 1 {
		t.Errorf("countries: %v", r.Dims[DimCountry])
	}
	// A fourth value beyond the limit of three counts as Other.
	extra := New(4, cpmOf)
	f, _ := FactOf(&event.Event{Kind: event.KindImpression, TS: base, Campaign: "c", Country: "FR"}, 0)
	extra.Add(&f, 0, 1, nil)
	r.Merge(ScopeCampaign, extra.Get(RecKey{ScopeCampaign, "c", hour}), extra.Names(), 3, NewFold())
	if len(r.Dims[DimCountry]) != 4 || r.Dims[DimCountry][Other].Impressions != 1 {
		t.Errorf("over the limit: %v", r.Dims[DimCountry])
	}
	// A Floor keeps what a record has applied out.
	again := New(4, cpmOf)
	fl := Floor{RecKey{ScopeCampaign, "c", hour}: {0, 11}}
	for i := range events {
		if f, ok := FactOf(&events[i], 0); ok {
			again.Add(&f, 1, uint64(10+i), fl)
		}
	}
	if d := again.Get(RecKey{ScopeCampaign, "c", hour}); d == nil || d.Impressions != 0 || d.Calls != 1 {
		t.Errorf("above the Floor: %+v", d)
	}
	if len(again.Recs) != 1 {
		t.Errorf("records outside the Floor: %d", len(again.Recs))
	}
}

func TestMessageTimestampStandsInForMissingTS(t *testing.T) {
	f, ok := FactOf(&event.Event{Kind: event.KindClick, Campaign: "c"}, 7200_000)
	if !ok || f.Hour != 2 {
		t.Errorf("%+v %v", f, ok)
	}
}

// A click id is Counted once per record, in the totals and every breakdown,
// and the record remembers the last MaxClickIDs of them.
func TestClickCountedOncePerRecord(t *testing.T) {
	replayed := event.ID{1}
	hour := time.Date(2026, 12, 5, 17, 0, 0, 0, time.UTC).UnixMilli()
	click := func(id event.ID, slot string) event.Event {
		return event.Event{ID: id, Kind: event.KindClick, Campaign: "c1", Site: "s1", Slot: slot, TS: hour}
	}
	var first, second []event.Event
	for i := range 10 {
		first = append(first, click(event.ID{2, byte(i)}, "top"))
	}
	for range 5 {
		first = append(first, click(replayed, "side"))
		second = append(second, click(replayed, "side"))
	}
	rec := &Record{}
	for _, batch := range [][]event.Event{first, second} {
		tl := New(1, nil)
		for i := range batch {
			f, ok := FactOf(&batch[i], 0)
			if !ok {
				t.Fatal("click not Counted")
			}
			tl.Add(&f, 0, uint64(i+1), nil)
		}
		d := tl.Get(RecKey{ScopeCampaign, "c1", hour / 3_600_000})
		again, err := DecodeRecord(rec.AppendMsgpack(nil))
		if err != nil {
			t.Fatal(err)
		}
		rec = again
		rec.Merge(ScopeCampaign, d, tl.Names(), 100, NewFold())
	}
	if rec.Totals.Clicks != 11 {
		t.Errorf("clicks %d, want 11", rec.Totals.Clicks)
	}
	if got := rec.Dims[DimSlot]; got["top"].Clicks != 10 || got["side"].Clicks != 1 {
		t.Errorf("slots %v, want top 10 and side 1", got)
	}
	if len(rec.Clicks) != 11*16 {
		t.Errorf("%d bytes of click ids, want 11 ids", len(rec.Clicks))
	}

	// Past the bound the oldest id is forgotten.
	r := &Record{}
	for i := range MaxClickIDs + 1 {
		if !r.firstClick(event.ID{3, byte(i), byte(i >> 8)}) {
			t.Fatalf("click %d taken for a replay", i)
		}
	}
	if len(r.Clicks) != MaxClickIDs*16 || r.firstClick(event.ID{3, 1}) || !r.firstClick(event.ID{3, 0}) {
		t.Error("the window does not keep the last MaxClickIDs ids")
	}
	if !r.firstClick(event.ID{}) || !r.firstClick(event.ID{}) {
		t.Error("a click without an id not Counted")
	}
}
