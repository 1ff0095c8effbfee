package adserver

import (
	"context"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/adsyn/adsyn/segments"
)

// The generated model of benchmarks: a realistic spread of targeting over
// n campaigns, so the decision does real work.

var (
	benchCats = []string{"news", "sport", "outdoor", "travel", "food", "tech", "finance", "home", "garden", "auto",
		"music", "film", "books", "games", "fashion", "beauty", "pets", "family", "education", "jobs",
		"business", "science", "art", "design", "photo", "crafts", "diy", "cooking", "wine", "coffee",
		"running", "cycling", "hiking", "fishing", "golf", "tennis", "football", "basketball", "skiing", "sailing"}
	benchLangs     = []string{"en", "de", "fr", "es", "it", "ru", "nl", "pl"}
	benchCountries = []string{"DE", "FR", "GB", "US", "ES", "IT", "NL", "PL", "AT", "CH"}
	benchDevices   = []string{"desktop", "mobile", "tablet"}
	benchSizes     = []string{"300x250", "728x90", "160x600", "320x50"}
)

func benchSegment(i uint64) string { return "seg-" + strconv.FormatUint(i%200, 10) }

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

// BenchSnapshot generates n campaigns (with one or two creatives each) over
// sites sites of two slots ("top": 728x90, 320x50; "side": 300x250, 160x600).
func BenchSnapshot(n, sites int, seed uint64) *Snapshot {
	s := NewSnapshot()
	p := prng(seed + 1)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	siteIDs := make([]string, sites)
	for i := range sites {
		id := "s" + strconv.Itoa(i)
		siteIDs[i] = id
		s.Sites[id] = &Site{ID: id, Publisher: "p" + strconv.Itoa(i%20), Name: "Site " + id, Status: Active,
			Categories: pickN(&p, benchCats, 1),
			Slots: []Slot{
				{ID: "top", Sizes: []string{"728x90", "320x50"}},
				{ID: "side", Sizes: []string{"300x250", "160x600"}},
			}}
	}
	for i := range max(n/20, 1) {
		id := "a" + strconv.Itoa(i)
		s.Advertisers[id] = &Advertiser{ID: id, Name: "Advertiser " + id, Status: Active}
	}
	segIDs := make([]string, 200)
	for i := range segIDs {
		segIDs[i] = benchSegment(uint64(i))
	}
	for i := range n {
		id := "c" + strconv.Itoa(i)
		c := &Campaign{ID: id, Advertiser: "a" + strconv.Itoa(i%max(n/20, 1)), Name: "Campaign " + id,
			Status: Active, Start: start, Priority: 8, Weight: 1 + p.n(3),
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
			t.Languages.Include = pickN(&p, benchLangs, 1+p.n(2))
		}
		if p.pct(20) {
			t.Countries.Include = pickN(&p, benchCountries, 1+p.n(3))
		} else if p.pct(5) {
			t.Countries.Exclude = pickN(&p, benchCountries, 1)
		}
		if p.pct(15) {
			t.Devices.Include = pickN(&p, benchDevices, 1+p.n(2))
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
			t.Categories.Include = pickN(&p, benchCats, 1+p.n(3))
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
			c.Caps = []FreqCap{{Count: 1 + p.n(5), Window: Duration(24 * time.Hour)}}
		}
		if p.pct(10) {
			c.DayParts = []DayPart{{From: 6, To: 22}}
		}
		s.Campaigns[id] = c
		for k := range 1 + p.n(2) {
			cid := id + "-" + strconv.Itoa(k)
			s.Creatives[cid] = &Creative{ID: cid, Advertiser: c.Advertiser, Campaign: id, Type: Image, Status: Active,
				Weight: 1, Sizes: []string{benchSizes[p.n(len(benchSizes))]}, Landing: "https://example.com/" + cid,
				Content: Content{Image: "https://example.com/img/" + cid + ".png", Alt: "ad " + cid}}
		}
	}
	return s
}

// benchRecord generates one visitor record: a few segments, a language,
// and impressions of a few campaigns.
func benchRecord(seed uint64, now int64) segments.Record {
	p := prng(seed)
	r := segments.Record{LastSeen: now - int64(p.n(3600_000)), Langs: []string{benchLangs[p.n(len(benchLangs))]}}
	for _, id := range pickN(&p, benchSegmentIDs(), 2+p.n(8)) {
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

func benchSegmentIDs() []string {
	out := make([]string, 200)
	for i := range out {
		out[i] = benchSegment(uint64(i))
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

// Bench is the edge and traffic mix of the edge's timing tests (the ad
// scenario itself lives in bench/).
type Bench struct {
	Edge *Edge
	opts BenchOptions
}

// BenchOptions size the traffic mix.
type BenchOptions struct {
	Campaigns, Visitors, Sites int
	Seed                       uint64
	Zipf                       bool
}

// BenchUserAgent is a browser's User-Agent for load generators: requests
// without one are bots and get no ad (see WithBots).
const BenchUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// AppendURI appends the request URI of the i-th request of the traffic mix:
// a site and slot, a visitor among Visitors, and page categories.
func (b *Bench) AppendURI(dst []byte, i uint64) []byte {
	r := splitmix(i ^ b.opts.Seed)
	dst = append(dst, "/ad?site=s"...)
	dst = strconv.AppendUint(dst, r%uint64(b.opts.Sites), 10)
	if r>>8&1 == 0 {
		dst = append(dst, "&slot=top"...)
	} else {
		dst = append(dst, "&slot=side"...)
	}
	dst = append(dst, "&u="...)
	dst = appendVisitor(dst, b.visitor(r>>10))
	dst = append(dst, "&c="...)
	dst = append(dst, benchCats[(r>>40)%uint64(len(benchCats))]...)
	dst = append(dst, ',')
	dst = append(dst, benchCats[(r>>48)%uint64(len(benchCats))]...)
	return append(dst, "&fmt=json"...)
}

// visitor picks the visitor of a request from random bits r.
func (b *Bench) visitor(r uint64) uint64 {
	n := uint64(b.opts.Visitors)
	if !b.opts.Zipf {
		return r % n
	}
	// Log-uniform rank: P(rank <= k) = ln(k)/ln(n), i.e. Zipf with s = 1.
	u := float64(r&(1<<40-1)) / (1 << 40)
	return min(uint64(math.Exp(u*math.Log(float64(n)))), n) - 1
}

func appendVisitor(dst []byte, i uint64) []byte {
	dst = append(dst, 'v')
	return strconv.AppendUint(dst, i, 10)
}

// syntheticRecords answers every visitor with one of a few thousand record
// shapes, without I/O or allocation.
type syntheticRecords struct{ shapes []segments.Record }

func newSyntheticRecords(seed uint64) *syntheticRecords {
	s := &syntheticRecords{shapes: make([]segments.Record, 4096)}
	now := time.Now().UnixMilli()
	for i := range s.shapes {
		s.shapes[i] = benchRecord(splitmix(seed^uint64(i)+1), now)
	}
	return s
}

func (s *syntheticRecords) shape(visitor string) *segments.Record {
	h := uint64(14695981039346656037)
	for i := 0; i < len(visitor); i++ {
		h = (h ^ uint64(visitor[i])) * 1099511628211
	}
	return &s.shapes[h%uint64(len(s.shapes))]
}

// Get implements Records.
func (s *syntheticRecords) Get(_ context.Context, visitor string) (*segments.Record, error) {
	return s.shape(visitor), nil
}
