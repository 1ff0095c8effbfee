package bench

import (
	"slices"
	"strconv"
	"time"

	"github.com/adsyn/adsyn/adserver"
	"github.com/adsyn/adsyn/segments"
)

// The generated model of the ad scenario: a realistic spread of targeting over
// n campaigns, so the decision does real work.

var (
	adCats = []string{"news", "sport", "outdoor", "travel", "food", "tech", "finance", "home", "garden", "auto",
		"music", "film", "books", "games", "fashion", "beauty", "pets", "family", "education", "jobs",
		"business", "science", "art", "design", "photo", "crafts", "diy", "cooking", "wine", "coffee",
		"running", "cycling", "hiking", "fishing", "golf", "tennis", "football", "basketball", "skiing", "sailing"}
	adLangs     = []string{"en", "de", "fr", "es", "it", "ru", "nl", "pl"}
	adCountries = []string{"DE", "FR", "GB", "US", "ES", "IT", "NL", "PL", "AT", "CH"}
	adDevices   = []string{"desktop", "mobile", "tablet"}
	adSizes     = []string{"300x250", "728x90", "160x600", "320x50"}
)

func adSegment(i uint64) string { return "seg-" + strconv.FormatUint(i%200, 10) }

type prng uint64

func (p *prng) next() uint64   { *p = prng(splitmix(uint64(*p))); return uint64(*p) }
func (p *prng) n(k int) int    { return int(p.next() % uint64(k)) }
func (p *prng) pct(x int) bool { return p.n(100) < x }

func pickN(p *prng, from []string, k int) []string {
	out := make([]string, 0, k)
	for range k {
		out = append(out, from[p.n(len(from))])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// adSnapshot generates n campaigns (with one or two creatives each) over
// sites sites of two slots ("top": 728x90, 320x50; "side": 300x250, 160x600).
func adSnapshot(n, sites int, seed uint64) *adserver.Snapshot {
	s := adserver.NewSnapshot()
	p := prng(seed + 1)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	siteIDs := make([]string, sites)
	for i := range sites {
		id := "s" + strconv.Itoa(i)
		siteIDs[i] = id
		s.Sites[id] = &adserver.Site{ID: id, Publisher: "p" + strconv.Itoa(i%20), Name: "Site " + id, Status: adserver.Active,
			Categories: pickN(&p, adCats, 1),
			Slots: []adserver.Slot{
				{ID: "top", Sizes: []string{"728x90", "320x50"}},
				{ID: "side", Sizes: []string{"300x250", "160x600"}},
			}}
	}
	for i := range max(n/20, 1) {
		id := "a" + strconv.Itoa(i)
		s.Advertisers[id] = &adserver.Advertiser{ID: id, Name: "Advertiser " + id, Status: adserver.Active}
	}
	segIDs := make([]string, 200)
	for i := range segIDs {
		segIDs[i] = adSegment(uint64(i))
	}
	for i := range n {
		id := "c" + strconv.Itoa(i)
		c := &adserver.Campaign{ID: id, Advertiser: "a" + strconv.Itoa(i%max(n/20, 1)), Name: "Campaign " + id,
			Status: adserver.Active, Start: start, Priority: 8, Weight: 1 + p.n(3),
			CPM: float64(50+p.n(950)) / 100}
		switch p.n(10) {
		case 0:
			c.Priority = 4
		case 1:
			c.Priority = 12
		case 2:
			c.Priority = 16
		}
		t := &c.Targeting
		if p.pct(30) {
			t.Languages.Include = pickN(&p, adLangs, 1+p.n(2))
		}
		if p.pct(20) {
			t.Countries.Include = pickN(&p, adCountries, 1+p.n(3))
		} else if p.pct(5) {
			t.Countries.Exclude = pickN(&p, adCountries, 1)
		}
		if p.pct(15) {
			t.Devices.Include = pickN(&p, adDevices, 1+p.n(2))
		}
		if p.pct(20) {
			t.Sites.Include = pickN(&p, siteIDs, 1+p.n(5))
		} else if p.pct(5) {
			t.Sites.Exclude = pickN(&p, siteIDs, 1+p.n(3))
		}
		if p.pct(10) {
			t.Slots.Include = []string{siteIDs[p.n(sites)] + "/top", siteIDs[p.n(sites)] + "/side"}
		}
		if p.pct(25) {
			t.Categories.Include = pickN(&p, adCats, 1+p.n(3))
		}
		if p.pct(30) {
			t.Segments.Any = pickN(&p, segIDs, 1+p.n(3))
		}
		if p.pct(5) {
			t.Segments.All = pickN(&p, segIDs, 2)
		}
		if p.pct(5) {
			t.Segments.None = pickN(&p, segIDs, 1)
		}
		if p.pct(20) {
			c.Caps = []adserver.FreqCap{{Count: 1 + p.n(5), Window: adserver.Duration(24 * time.Hour)}}
		}
		if p.pct(10) {
			c.DayParts = []adserver.DayPart{{From: 6, To: 22}}
		}
		s.Campaigns[id] = c
		for k := range 1 + p.n(2) {
			cid := id + "-" + strconv.Itoa(k)
			s.Creatives[cid] = &adserver.Creative{ID: cid, Advertiser: c.Advertiser, Campaign: id, Type: adserver.Image, Status: adserver.Active,
				Weight: 1, Sizes: []string{adSizes[p.n(len(adSizes))]}, Landing: "https://example.com/" + cid,
				Content: adserver.Content{Image: "https://example.com/img/" + cid + ".png", Alt: "ad " + cid}}
		}
	}
	return s
}

// adRecord generates one visitor record: a few segments, a language,
// and impressions of a few campaigns.
func adRecord(seed uint64, now int64) segments.Record {
	p := prng(seed)
	r := segments.Record{LastSeen: now - int64(p.n(3600_000)), Langs: []string{adLangs[p.n(len(adLangs))]}}
	for _, id := range pickN(&p, adSegmentIDs(), 2+p.n(8)) {
		r.Segments = append(r.Segments, segments.Score{ID: id, Score: 1 + float64(p.n(100))/10, At: r.LastSeen})
	}
	slices.SortFunc(r.Segments, func(a, b segments.Score) int { return cmpStr(a.ID, b.ID) })
	for range p.n(4) {
		c := "c" + strconv.Itoa(p.n(10000))
		times := []int64{r.LastSeen - int64(p.n(80_000_000)), r.LastSeen}
		slices.Sort(times)
		r.Caps = append(r.Caps, segments.Cap{Campaign: c, Times: times})
	}
	slices.SortFunc(r.Caps, func(a, b segments.Cap) int { return cmpStr(a.Campaign, b.Campaign) })
	r.Caps = slices.CompactFunc(r.Caps, func(a, b segments.Cap) bool { return a.Campaign == b.Campaign })
	return r
}

func adSegmentIDs() []string {
	out := make([]string, 200)
	for i := range out {
		out[i] = adSegment(uint64(i))
	}
	return out
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// splitmix64: a fast, well-mixed step for draws from one seed.
func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}
