package adserver

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/adsyn/adsyn/adserver/decision"
	"github.com/adsyn/adsyn/segments"
)

var (
	t0    = time.Date(2025, 6, 4, 12, 0, 0, 0, time.UTC) // a Wednesday, noon UTC
	start = t0.Add(-30 * 24 * time.Hour)
)

// testSnap is two advertisers and two sites: s1 (categories news) with top
// 728x90 and side 300x250, s2 with side 300x250 and a native feed slot.
func testSnap(camps ...*Campaign) *Snapshot {
	s := NewSnapshot()
	s.Advertisers["a1"] = &Advertiser{ID: "a1", Name: "A1", Status: Active}
	s.Advertisers["a2"] = &Advertiser{ID: "a2", Name: "A2", Status: Paused}
	s.Sites["s1"] = &Site{ID: "s1", Publisher: "p1", Name: "S1", Status: Active, Categories: []string{"news"}, Domains: []string{"pub.example"},
		Slots: []Slot{{ID: "top", Sizes: []string{"728x90"}}, {ID: "side", Sizes: []string{"300x250"}}}}
	s.Sites["s2"] = &Site{ID: "s2", Publisher: "p2", Name: "S2", Status: Active,
		Slots: []Slot{{ID: "side", Sizes: []string{"300x250"}}, {ID: "feed", Native: true}}}
	for _, c := range camps {
		s.Campaigns[c.ID] = c
		sizes := []string{"300x250"}
		if c.Name == "leaderboard" {
			sizes = []string{"728x90"}
		}
		s.Creatives[c.ID+"-cr"] = &Creative{ID: c.ID + "-cr", Advertiser: c.Advertiser, Campaign: c.ID, Type: Image,
			Status: Active, Weight: 1, Sizes: sizes, Landing: "https://example.com/" + c.ID,
			Content:  Content{Image: "https://example.com/" + c.ID + ".png"},
			Variants: map[string]Variant{"de": {Content: Content{Image: "https://example.com/de.png"}, Landing: "https://example.de/"}}}
	}
	return s
}

func camp(id string, mod ...func(*Campaign)) *Campaign {
	c := &Campaign{ID: id, Advertiser: "a1", Name: id, Status: Active, Start: start, Priority: DefaultPriority, CPM: 1, Weight: 1}
	for _, m := range mod {
		m(c)
	}
	return c
}

func req(mod ...func(*Request)) *Request {
	r := &Request{Now: t0.UnixMilli(), Site: "s1", Slot: "side", Lang: "en", Device: "desktop", Rand: 42}
	for _, m := range mod {
		m(r)
	}
	return r
}

func record(segs ...string) *segments.Record {
	r := &segments.Record{Visitor: "v1", LastSeen: t0.Add(-time.Minute).UnixMilli()}
	for _, s := range segs {
		r.Segments = append(r.Segments, segments.Score{ID: s, Score: 1, At: r.LastSeen})
	}
	slices.SortFunc(r.Segments, func(a, b segments.Score) int { return cmpStr(a.ID, b.ID) })
	return r
}

func TestDecide(t *testing.T) {
	personal := func(r *Request) { r.Personalize = true }
	withRecord := func(rec *segments.Record) func(*Request) { return func(r *Request) { r.Record = rec } }
	capped := &segments.Record{Visitor: "v1", LastSeen: t0.Add(-time.Minute).UnixMilli(), Caps: []segments.Cap{
		{Campaign: "c1", Times: []int64{t0.Add(-30 * time.Hour).UnixMilli(), t0.Add(-3 * time.Hour).UnixMilli(), t0.Add(-2 * time.Hour).UnixMilli()}},
	}}
	cap2 := func(c *Campaign) { c.Caps = []FreqCap{{Count: 2, Window: Duration(24 * time.Hour)}} }
	cap3 := func(c *Campaign) { c.Caps = []FreqCap{{Count: 3, Window: Duration(24 * time.Hour)}} }
	unknown := func(r *Request) { r.RecordUnknown = true }
	tests := []struct {
		name  string
		camps []*Campaign
		req   *Request
		want  string // "" for no ad
	}{
		{"no campaigns", nil, req(), ""},
		{"untargeted", []*Campaign{camp("c1")}, req(), "c1"},
		{"unknown site", []*Campaign{camp("c1")}, req(func(r *Request) { r.Site = "nope" }), ""},
		{"unknown slot", []*Campaign{camp("c1")}, req(func(r *Request) { r.Slot = "nope" }), ""},
		{"tier beats eCPM", []*Campaign{camp("c1", func(c *Campaign) { c.Priority = 4 }), camp("c2", func(c *Campaign) { c.CPM = 10 })}, req(), "c1"},
		{"eCPM within tier", []*Campaign{camp("c1"), camp("c2", func(c *Campaign) { c.CPM = 10 })}, req(), "c2"},
		{"paused", []*Campaign{camp("c1", func(c *Campaign) { c.Status = Paused })}, req(), ""},
		{"advertiser paused", []*Campaign{camp("c1", func(c *Campaign) { c.Advertiser = "a2" })}, req(), ""},
		{"advertiser missing", []*Campaign{camp("c1", func(c *Campaign) { c.Advertiser = "zz" })}, req(), ""},
		{"flight not started", []*Campaign{camp("c1", func(c *Campaign) { c.Start = t0.Add(time.Hour) })}, req(), ""},
		{"flight ended", []*Campaign{camp("c1", func(c *Campaign) { c.End = t0.Add(-time.Hour) })}, req(), ""},
		{"flight ends after index build", []*Campaign{camp("c1", func(c *Campaign) { c.End = t0.Add(time.Hour) })},
			req(func(r *Request) { r.Now = t0.Add(2 * time.Hour).UnixMilli() }), ""},
		{"lower ranked when best is off", []*Campaign{camp("c1", func(c *Campaign) { c.CPM = 9; c.Status = Paused }), camp("c2")}, req(), "c2"},
		{"creative size does not fit", []*Campaign{camp("c1", func(c *Campaign) { c.Name = "leaderboard" })}, req(), ""},
		{"creative size fits", []*Campaign{camp("c1", func(c *Campaign) { c.Name = "leaderboard" })}, req(func(r *Request) { r.Slot = "top" }), "c1"},
		{"native slot, image creative", []*Campaign{camp("c1")}, req(func(r *Request) { r.Site, r.Slot = "s2", "feed" }), ""},
		{"site include", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Sites.Include = []string{"s1"} })}, req(), "c1"},
		{"site include other", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Sites.Include = []string{"s2"} })}, req(), ""},
		{"site exclude", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Sites.Exclude = []string{"s1"} })}, req(), ""},
		{"slot include", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Slots.Include = []string{"s1/side"} })}, req(), "c1"},
		{"slot include other", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Slots.Include = []string{"s2/side"} })}, req(), ""},
		{"slot exclude", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Slots.Exclude = []string{"s1/side"} })}, req(), ""},
		{"language include", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Languages.Include = []string{"de", "en"} })}, req(), "c1"},
		{"language include other", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Languages.Include = []string{"de"} })}, req(), ""},
		{"language unknown", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Languages.Include = []string{"en"} })}, req(func(r *Request) { r.Lang = "" }), ""},
		{"language exclude", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Languages.Exclude = []string{"en"} })}, req(), ""},
		{"country include", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Countries.Include = []string{"DE"} })},
			req(func(r *Request) { r.Country, r.Region = "DE", "DE-BY" }), "c1"},
		{"region include", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Countries.Include = []string{"DE-BY"} })},
			req(func(r *Request) { r.Country, r.Region = "DE", "DE-BY" }), "c1"},
		{"region include other", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Countries.Include = []string{"DE-BE"} })},
			req(func(r *Request) { r.Country, r.Region = "DE", "DE-BY" }), ""},
		{"country include without geo", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Countries.Include = []string{"DE"} })}, req(), ""},
		{"country exclude", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Countries.Exclude = []string{"FR"} })},
			req(func(r *Request) { r.Country = "FR" }), ""},
		{"country exclude without geo", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Countries.Exclude = []string{"FR"} })}, req(), "c1"},
		{"device include other", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Devices.Include = []string{"mobile"} })}, req(), ""},
		{"device include", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Devices.Include = []string{"desktop"} })}, req(), "c1"},
		{"device exclude", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Devices.Exclude = []string{"desktop"} })}, req(), ""},
		{"category from page", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Categories.Include = []string{"sport"} })},
			req(func(r *Request) { r.Categories = []string{"travel", "sport"} }), "c1"},
		{"category from site", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Categories.Include = []string{"news"} })}, req(), "c1"},
		{"category missing", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Categories.Include = []string{"sport"} })}, req(), ""},
		{"category excluded", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Categories.Exclude = []string{"news"} })}, req(), ""},
		{"segments without consent", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Segments.Any = []string{"cycling"} })},
			req(withRecord(record("cycling"))), ""},
		{"segments any", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Segments.Any = []string{"cycling", "golf"} })},
			req(personal, withRecord(record("cycling"))), "c1"},
		{"segments any missing", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Segments.Any = []string{"golf"} })},
			req(personal, withRecord(record("cycling"))), ""},
		{"segments any without record", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Segments.Any = []string{"golf"} })},
			req(personal), ""},
		{"segments all", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Segments.All = []string{"cycling", "travel"} })},
			req(personal, withRecord(record("cycling", "golf", "travel"))), "c1"},
		{"segments all missing one", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Segments.All = []string{"cycling", "travel"} })},
			req(personal, withRecord(record("cycling"))), ""},
		{"segments none", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Segments.None = []string{"cycling"} })},
			req(personal, withRecord(record("cycling"))), ""},
		{"segments none without consent is contextual", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Segments.None = []string{"cycling"} })},
			req(withRecord(record("cycling"))), "c1"},
		{"frequency cap reached", []*Campaign{camp("c1", cap2)}, req(withRecord(capped)), ""},
		{"frequency cap not reached", []*Campaign{camp("c1", cap3)}, req(withRecord(capped)), "c1"},
		{"frequency cap with this edge's impressions", []*Campaign{camp("c1", cap3)}, req(withRecord(capped), func(r *Request) {
			r.Recent = []Impression{{Campaign: hashID("c1"), At: t0.Add(-10 * time.Second).UnixMilli()}}
		}), ""},
		{"edge impressions already in the record", []*Campaign{camp("c1", cap3)}, req(withRecord(capped), func(r *Request) {
			r.Recent = []Impression{{Campaign: hashID("c1"), At: t0.Add(-2 * time.Hour).UnixMilli()}}
		}), "c1"},
		{"frequency cap falls to next", []*Campaign{camp("c1", cap2, func(c *Campaign) { c.CPM = 5 }), camp("c2")}, req(withRecord(capped)), "c2"},
		{"record not read: capped campaign left out", []*Campaign{camp("c1", cap3, func(c *Campaign) { c.CPM = 5 }), camp("c2")},
			req(personal, unknown), "c2"},
		{"record not read, no consent: capped campaign still left out", []*Campaign{camp("c1", cap3)}, req(unknown), ""},
		{"record not read: segment exclusion left out", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Segments.None = []string{"cycling"} })},
			req(personal, unknown), ""},
		{"record not read, no consent: exclusions are contextual", []*Campaign{camp("c1", func(c *Campaign) { c.Targeting.Segments.None = []string{"cycling"} })},
			req(unknown), "c1"},
		{"record not read: untargeted still served", []*Campaign{camp("c1")}, req(personal, unknown), "c1"},
		{"day part open", []*Campaign{camp("c1", func(c *Campaign) { c.DayParts = []DayPart{{Days: []string{"wed"}, From: 9, To: 17}} })}, req(), "c1"},
		{"day part closed hour", []*Campaign{camp("c1", func(c *Campaign) { c.DayParts = []DayPart{{From: 13, To: 17}} })}, req(), ""},
		{"day part closed day", []*Campaign{camp("c1", func(c *Campaign) { c.DayParts = []DayPart{{Days: []string{"sat", "sun"}, From: 0, To: 24}} })}, req(), ""},
		{"day part in time zone", []*Campaign{camp("c1", func(c *Campaign) {
			c.Timezone = "Asia/Tokyo" // noon UTC is 21:00 in Tokyo
			c.DayParts = []DayPart{{From: 20, To: 22}}
		})}, req(), "c1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix := Build(testSnap(tc.camps...), t0, nil)
			d, ok := ix.Decide(tc.req)
			got := ""
			if ok {
				got = d.Campaign.ID
			}
			if got != tc.want {
				t.Errorf("Decide = %q, want %q\n%s", got, tc.want, explainText(ix, tc.req))
			}
			checkExplain(t, ix, tc.req)
		})
	}
}

func hashID(id string) uint64 { return Build(testSnap(camp(id)), t0, nil).camps[0].idHash }

func explainText(ix *Index, r *Request) string {
	var s string
	for _, v := range ix.Explain(r).Campaigns {
		s += fmt.Sprintf("  %s: %v\n", v.Campaign, v.Reasons)
	}
	return s
}

// checkExplain holds Explain's rule-by-rule evaluation to the bitsets: the
// same campaigns are eligible, and the chosen one ranks first among them.
func checkExplain(t *testing.T, ix *Index, r *Request) {
	t.Helper()
	want := map[string]bool{}
	if se := ix.sites[r.Site]; se != nil {
		if sl := se.slots[r.Slot]; sl != nil {
			acc := make(bitset, ix.words)
			ix.filter(acc, se, sl, r)
			for i := range ix.camps {
				if acc.has(i) && ix.camps[i].block(r) == decision.Serve {
					want[ix.camps[i].c.ID] = true
				}
			}
		}
	}
	ex := ix.Explain(r)
	var first string
	for _, v := range ex.Campaigns {
		if v.Eligible != want[v.Campaign] {
			t.Fatalf("explain says %s eligible=%v (%v), bitsets say %v", v.Campaign, v.Eligible, v.Reasons, want[v.Campaign])
		}
		if v.Eligible && first == "" {
			first = v.Campaign
		}
	}
	if (ex.Chosen == "") != (first == "") {
		t.Fatalf("chosen %q, first eligible %q", ex.Chosen, first)
	}
	if ex.Chosen != "" {
		c, f := ix.camps[ix.byID[ex.Chosen]], ix.camps[ix.byID[first]]
		if c.prio != f.prio || c.ecpm != f.ecpm {
			t.Fatalf("chosen %s does not rank with the first eligible %s", ex.Chosen, first)
		}
	}
}

func TestDecideVariantAndCreative(t *testing.T) {
	ix := Build(testSnap(camp("c1")), t0, nil)
	d, ok := ix.Decide(req(func(r *Request) { r.Lang = "de" }))
	if !ok || d.Content.Image != "https://example.com/de.png" || d.Landing != "https://example.de/" || d.Size != "300x250" || d.W != 300 || d.H != 250 {
		t.Fatalf("German variant: %+v", d)
	}
	d, _ = ix.Decide(req())
	if d.Content.Image != "https://example.com/c1.png" || d.Landing != "https://example.com/c1" {
		t.Fatalf("base content: %+v", d)
	}
}

func TestDecideWeightedDraw(t *testing.T) {
	ix := Build(testSnap(camp("c1"), camp("c2", func(c *Campaign) { c.Weight = 3 }), camp("c3", func(c *Campaign) { c.CPM = 0.5 })), t0, nil)
	counts := map[string]int{}
	const n = 8000
	for i := range n {
		d, ok := ix.Decide(req(func(r *Request) { r.Rand = splitmix(uint64(i)) }))
		if !ok {
			t.Fatal("no ad")
		}
		counts[d.Campaign.ID]++
	}
	if counts["c3"] != 0 {
		t.Errorf("lower eCPM won %d times", counts["c3"])
	}
	if share := float64(counts["c2"]) / n; share < 0.70 || share > 0.80 {
		t.Errorf("weight 3 of 4 won %.3f of draws, want about 0.75 (%v)", share, counts)
	}
}

func TestDecidePace(t *testing.T) {
	p := NewPace()
	ix := Build(testSnap(camp("c1", func(c *Campaign) { c.CPM = 5 }), camp("c2")), t0, func(c *Campaign) *Pace {
		if c.ID == "c1" {
			return p
		}
		return nil
	})
	p.limit.Store(2)
	var got []string
	for range 4 {
		d, ok := ix.Decide(req())
		if !ok {
			t.Fatal("no ad")
		}
		d.Pace.Charge(d.CPM)
		got = append(got, d.Campaign.ID)
	}
	if want := []string{"c1", "c1", "c2", "c2"}; !slices.Equal(got, want) {
		t.Fatalf("served %v, want %v", got, want)
	}
	if p.cost.Load() != 2*5_000_000 {
		t.Fatalf("cost %d", p.cost.Load())
	}
}

// TestExplainAgreesWithDecide runs random requests over a generated model.
func TestExplainAgreesWithDecide(t *testing.T) {
	snap := BenchSnapshot(600, 10, 7)
	ix := Build(snap, t0, nil)
	p := prng(99)
	now := t0.UnixMilli()
	for i := range 300 {
		r := &Request{Now: now, Site: "s" + fmt.Sprint(p.n(11)), Slot: []string{"top", "side", "x"}[p.n(3)],
			Lang: benchLangs[p.n(len(benchLangs))], Device: benchDevices[p.n(3)], Rand: p.next(),
			Personalize: p.pct(60), Categories: pickN(&p, benchCats, p.n(3))}
		if p.pct(70) {
			r.Country = benchCountries[p.n(len(benchCountries))]
		}
		if p.pct(80) {
			rec := benchRecord(p.next(), now)
			r.Record = &rec
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkExplain(t, ix, r) })
	}
}

func TestDayFraction(t *testing.T) {
	day := time.Date(2025, 6, 4, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		c    *Campaign
		now  time.Time
		want float64
	}{
		{"midnight", camp("c"), day, 0},
		{"noon", camp("c"), day.Add(12 * time.Hour), 0.5},
		{"started at 6", camp("c", func(c *Campaign) { c.Start = day.Add(6 * time.Hour) }), day.Add(15 * time.Hour), 0.5},
		{"ends at 12", camp("c", func(c *Campaign) { c.End = day.Add(12 * time.Hour) }), day.Add(6 * time.Hour), 0.5},
		{"day parts 8-12 and 14-18 at 10", camp("c", func(c *Campaign) { c.DayParts = []DayPart{{From: 8, To: 12}, {From: 14, To: 18}} }), day.Add(10 * time.Hour), 0.25},
		{"day parts at 13 (closed)", camp("c", func(c *Campaign) { c.DayParts = []DayPart{{From: 8, To: 12}, {From: 14, To: 18}} }), day.Add(13 * time.Hour), 0.5},
		{"day parts after close", camp("c", func(c *Campaign) { c.DayParts = []DayPart{{From: 8, To: 12}} }), day.Add(20 * time.Hour), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix := Build(testSnap(tc.c), day, nil)
			if got := ix.camps[0].dayFraction(tc.now); abs(got-tc.want) > 1e-9 {
				t.Errorf("dayFraction = %v, want %v", got, tc.want)
			}
		})
	}
}

func abs(f float64) float64 { return max(f, -f) }

func TestHeadroom(t *testing.T) {
	const cpm2 = 2_000_000 // CPM 2.00 in micros
	tests := []struct {
		name         string
		b            Budget
		today, total Spend
		frac         float64
		want         int64
	}{
		{"no budget", Budget{}, Spend{}, Spend{}, 0.5, 1<<63 - 1},
		{"total impressions", Budget{Unit: Impressions, Total: 100}, Spend{}, Spend{Imps: 60}, 0.5, 40},
		{"total spent", Budget{Unit: Impressions, Total: 100}, Spend{}, Spend{Imps: 120}, 0.5, 0},
		{"daily paced at noon", Budget{Unit: Impressions, Daily: 1000}, Spend{Imps: 400}, Spend{Imps: 400}, 0.5, 110},
		{"daily ahead of pace", Budget{Unit: Impressions, Daily: 1000}, Spend{Imps: 600}, Spend{Imps: 600}, 0.5, 0},
		{"daily at end of day", Budget{Unit: Impressions, Daily: 1000}, Spend{Imps: 990}, Spend{Imps: 990}, 1, 10},
		{"daily and total", Budget{Unit: Impressions, Daily: 1000, Total: 1200}, Spend{Imps: 100}, Spend{Imps: 1150}, 0.5, 50},
		// 10 money at CPM 2 is 5000 impressions; 4 spent is 2000 of them.
		{"total money", Budget{Unit: Money, Total: 10}, Spend{}, Spend{Imps: 2000, Cost: 2000 * cpm2}, 0.5, 3000},
		{"daily money paced", Budget{Unit: Money, Daily: 10}, Spend{}, Spend{}, 0.5, 2550},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := headroom(tc.b, cpm2, tc.today, tc.total, tc.frac); got != tc.want {
				t.Errorf("headroom = %d, want %d", got, tc.want)
			}
		})
	}
}
