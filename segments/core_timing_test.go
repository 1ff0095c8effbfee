package segments

import (
	"testing"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/msgp"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

func BenchmarkApply(b *testing.B) {
	tax := taxonomy.Default()
	pol := DefaultPolicy()
	ev := event.Event{Kind: event.KindSearch, TS: 1_700_000_000_000, Visitor: "v", Query: "сантехник срочно", Lang: "ru"}
	contribs, _ := tax.Match(nil, &ev)
	changes := []change{{seq: 1, ts: ev.TS, lang: "ru", contribs: contribs}}
	var r Record
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		changes[0].seq = uint64(i)
		changes[0].ts++
		pol.apply(&r, changes, tax)
	}
}

func BenchmarkMatch(b *testing.B) {
	tax := taxonomy.Default()
	evs := []event.Event{
		{Kind: event.KindSearch, Query: "срочно нужен сантехник на дом", Lang: "ru-RU", URL: "https://market.example/search?q=%D1%81%D0%B0%D0%BD%D1%82%D0%B5%D1%85%D0%BD%D0%B8%D0%BA"},
		{Kind: event.KindPageview, URL: "https://market.example/ru/uslugi/santehnika/moskva?page=2", Lang: "ru", Categories: []string{"home-repair"}},
		{Kind: event.KindPageview, URL: "https://news.example/2024/05/some-article-about-nothing", Lang: "en"},
	}
	dst := make([]taxonomy.Contribution, 0, 64)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		dst, _ = tax.Match(dst[:0], &evs[i%len(evs)])
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	var body []byte
	for i := range 512 {
		e := event.Event{ID: event.NewID(), Kind: event.KindPageview, TS: 1_700_000_000_000 + int64(i), Visitor: "visitor-0123456789abcdef", Consent: profile, URL: "https://market.example/ru/uslugi/santehnika/moskva?page=2", Referrer: "https://www.google.com/", Lang: "ru", Country: "RU", Device: event.Device{Type: "mobile", OS: "Android", OSVersion: "14"}, IP: "192.0.2.0"}
		body = e.AppendMsgpack(body)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_, _ = event.DecodeBatch(body, func(*event.Event) error { return nil })
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512), "ns/event")
}

// BenchmarkDecodeRecord reads a record as an edge's watch reads each write,
// beside msgpack/v5's decoding by reflection of the same bytes with the same
// pooled decoder (the twin, and what DecodeRecord did before).
func BenchmarkDecodeRecord(b *testing.B) {
	r := sampleRecord()
	enc := r.AppendMsgpack(nil)
	b.Run("DecodeRecord", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r Record
			if err := DecodeRecord(enc, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("msgpack/v5 reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r Record
			d := msgp.AcquireDecoder(enc)
			err := d.Decode(&r)
			msgp.ReleaseDecoder(d)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
