package adserver

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/adsyn/adsyn/adserver/decision"
)

// Snapshot is the whole campaign model at one moment, as read from
// adsyn_campaigns. An Index keeps pointers into it: never modify a Snapshot
// once it is built.
type Snapshot struct {
	Advertisers map[string]*Advertiser
	Campaigns   map[string]*Campaign
	Creatives   map[string]*Creative
	Sites       map[string]*Site
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{
		Advertisers: map[string]*Advertiser{},
		Campaigns:   map[string]*Campaign{},
		Creatives:   map[string]*Creative{},
		Sites:       map[string]*Site{},
	}
}

// Index is an immutable, request-ready view of a Snapshot: campaigns in rank
// order (tier, then eCPM), and per targeting value a bitset of the campaigns
// it admits. Edges swap a new one in on every change; readers never lock.
type Index struct {
	Built time.Time
	Snap  *Snapshot

	words int
	camps []entry // rank order
	byID  map[string]int

	sites map[string]*siteEntry

	lang, geo, device, cat dim
	segs                   dim       // incl: Any lists (open: campaigns without one); excl: None lists
	personal               bitset    // campaigns with Any or All segment rules
	hasAll                 bitset    // campaigns with All segment rules
	capped                 bitset    // campaigns with frequency caps
	segExcluding           bitset    // campaigns with None segment rules
	scratch                sync.Pool // *scratch sized to words

	docs docs // the creatives' document templates, kept by the next index
}

type entry struct {
	c         *Campaign
	idHash    uint64
	prio      int
	ecpm      int64 // CPM in micros
	weight    uint64
	sched     decision.Schedule
	caps      []decision.Cap
	all       []string // sorted
	creatives []crEntry
	pace      *Pace
	off       string // why it is never served; "" when servable
}

type size struct {
	w, h int
	s    string
}

type crEntry struct {
	cr       *Creative
	sizes    []size
	weight   uint64
	docs     []*docTmpl // cr.Content's document per size (one for native)
	variants map[string]*crVariant
}

type crVariant struct {
	*Variant
	docs []*docTmpl
}

// docs holds document templates by creative, language variant ("" for
// none) and size, so that a rebuild renders only what changed: a snapshot's
// *Creative is never changed in place (the catalog decodes a changed
// creative as a new value).
type docs map[docKey]*docTmpl

type docKey struct {
	cr   *Creative
	lang string
	w, h int
}

// get returns the template of cr's content c from prev or renders it, and
// keeps it in d.
func (d docs) get(prev docs, cr *Creative, lang string, c *Content, w, h int) *docTmpl {
	k := docKey{cr, lang, w, h}
	t, ok := prev[k]
	if !ok {
		t = newDocTmpl(cr.Type, c, w, h)
	}
	d[k] = t
	return t
}

// docsOf returns the templates of one content of ce, one per size (one for
// native).
func (ce *crEntry) docsOf(d, prev docs, lang string, c *Content) []*docTmpl {
	if ce.cr.Type == Native {
		return []*docTmpl{d.get(prev, ce.cr, lang, c, 0, 0)}
	}
	out := make([]*docTmpl, len(ce.sizes))
	for i, sz := range ce.sizes {
		out[i] = d.get(prev, ce.cr, lang, c, sz.w, sz.h)
	}
	return out
}

func sizesOf(ss []string) []size {
	out := make([]size, 0, len(ss))
	for _, s := range ss {
		if w, h, ok := parseSize(s); ok {
			out = append(out, size{w, h, s})
		}
	}
	return out
}

type siteEntry struct {
	site  *Site
	slots map[string]*slotEntry
}

type slotEntry struct {
	slot  *Slot
	sizes []size
	base  bitset // servable campaigns admitted by site, slot and size
}

// dim is one targeting dimension: open holds the campaigns that do not
// restrict it; vals, by value, the campaigns that include or exclude it
// (one map lookup per value a request names).
type dim struct {
	used bool
	open bitset
	vals map[string]*dimVal
}

// dimVal is the campaigns that include (incl) or exclude (excl) one value;
// either may be nil.
type dimVal struct{ incl, excl bitset }

type scratch struct{ plan }

func newDim(words int) dim {
	return dim{open: make(bitset, words), vals: map[string]*dimVal{}}
}

func (d *dim) set(i, words int, l List) {
	if len(l.Include) == 0 {
		d.open.set(i)
	}
	for _, v := range l.Include {
		d.used = true
		dv := d.val(v)
		dv.incl = setIn(dv.incl, i, words)
	}
	if len(l.Exclude) > 0 {
		d.used = true
		d.exclude(i, words, l.Exclude)
	}
}

// exclude marks campaign i as excluding vals, without making the dimension
// a group of its own (segment None lists).
func (d *dim) exclude(i, words int, vals []string) {
	for _, v := range vals {
		dv := d.val(v)
		dv.excl = setIn(dv.excl, i, words)
	}
}

func (d *dim) val(k string) *dimVal {
	v, ok := d.vals[k]
	if !ok {
		v = &dimVal{}
		d.vals[k] = v
	}
	return v
}

func setIn(b bitset, i, words int) bitset {
	if b == nil {
		b = make(bitset, words)
	}
	b.set(i)
	return b
}

// plan is one request's targeting as bitset terms, evaluated a word (64
// campaigns) at a time so the decision can stop at the first words that
// hold its winner: a candidate must be in base, in at least one bitset of
// every group, and in none of nots.
type plan struct {
	base   bitset
	groups [8][]bitset
	n      int // groups in use
	nots   []bitset
}

func (p *plan) reset(base bitset) {
	p.base, p.n, p.nots = base, 0, p.nots[:0]
}

func (p *plan) group(open bitset) {
	p.groups[p.n] = append(p.groups[p.n][:0], open)
	p.n++
}

func (p *plan) or(b bitset) { p.groups[p.n-1] = append(p.groups[p.n-1], b) }

// word evaluates the plan for campaigns w*64 to w*64+63.
func (p *plan) word(w int) uint64 {
	x := p.base[w]
	for _, g := range p.groups[:p.n] {
		if x == 0 {
			return 0
		}
		var y uint64
		for _, b := range g {
			y |= b[w]
		}
		x &= y
	}
	for _, b := range p.nots {
		if x == 0 {
			return 0
		}
		x &^= b[w]
	}
	return x
}

// add narrows p to campaigns admitting one of vals ("" is unknown).
func (d *dim) add(p *plan, vals ...string) {
	if !d.used {
		return
	}
	p.group(d.open)
	for _, v := range vals {
		if v != "" {
			p.value(d.vals[v])
		}
	}
}

// value adds one value's terms to p's last group and its exclusions.
func (p *plan) value(dv *dimVal) {
	if dv == nil {
		return
	}
	if dv.incl != nil {
		p.or(dv.incl)
	}
	if dv.excl != nil {
		p.nots = append(p.nots, dv.excl)
	}
}

// Build compiles s into an Index as of now. pace, when not nil, gives each
// servable campaign its shared budget state.
func Build(s *Snapshot, now time.Time, pace func(*Campaign) *Pace) *Index {
	return build(s, now, pace, nil)
}

// build is Build reusing the document templates of prev, if any.
func build(s *Snapshot, now time.Time, pace func(*Campaign) *Pace, prev *Index) *Index {
	ix := &Index{Built: now, Snap: s, byID: make(map[string]int, len(s.Campaigns)), sites: map[string]*siteEntry{}, docs: docs{}}
	var prevDocs docs
	if prev != nil {
		prevDocs = prev.docs
	}
	camps := make([]entry, 0, len(s.Campaigns))
	creatives := map[string][]*Creative{}
	for _, cr := range s.Creatives {
		if cr.Status == Active {
			creatives[cr.Campaign] = append(creatives[cr.Campaign], cr)
		}
	}
	for _, c := range s.Campaigns {
		e := entry{
			c:      c,
			idHash: xxhash.Sum64String(c.ID),
			prio:   c.Priority,
			ecpm:   int64(math.Round(c.CPM * 1e6)),
			weight: uint64(max(c.Weight, 1)),
			sched:  decision.Schedule{Start: c.Start.UnixMilli(), End: math.MaxInt64, Loc: time.UTC},
		}
		if !c.End.IsZero() {
			e.sched.End = c.End.UnixMilli()
		}
		if c.Timezone != "" {
			if loc, err := time.LoadLocation(c.Timezone); err == nil {
				e.sched.Loc = loc
			}
		}
		if len(c.DayParts) > 0 {
			e.sched.Hours = dayHours(c.DayParts)
		}
		for _, f := range c.Caps {
			e.caps = append(e.caps, decision.Cap{Count: f.Count, Window: time.Duration(f.Window).Milliseconds()})
		}
		if len(c.Targeting.Segments.All) > 0 {
			e.all = slices.Sorted(slices.Values(c.Targeting.Segments.All))
		}
		crs := creatives[c.ID]
		slices.SortFunc(crs, func(a, b *Creative) int { return cmp.Compare(a.ID, b.ID) })
		for _, cr := range crs {
			if cr.Advertiser == c.Advertiser {
				ce := crEntry{cr: cr, sizes: sizesOf(cr.Sizes), weight: uint64(max(cr.Weight, 1))}
				ce.docs = ce.docsOf(ix.docs, prevDocs, "", &cr.Content)
				for lang, v := range cr.Variants {
					if ce.variants == nil {
						ce.variants = map[string]*crVariant{}
					}
					ce.variants[lang] = &crVariant{Variant: &v, docs: ce.docsOf(ix.docs, prevDocs, lang, &v.Content)}
				}
				e.creatives = append(e.creatives, ce)
			}
		}
		adv := s.Advertisers[c.Advertiser]
		switch {
		case c.Status != Active:
			e.off = "campaign is " + string(c.Status)
		case adv == nil:
			e.off = "advertiser " + c.Advertiser + " does not exist"
		case adv.Status != Active:
			e.off = "advertiser is " + string(adv.Status)
		case e.sched.End <= now.UnixMilli():
			e.off = "flight ended"
		case len(e.creatives) == 0:
			e.off = "no active creative"
		case e.sched.NeverOpen():
			e.off = "day_parts open no hour"
		}
		camps = append(camps, e)
	}
	slices.SortFunc(camps, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.prio, b.prio), cmp.Compare(b.ecpm, a.ecpm), cmp.Compare(a.c.ID, b.c.ID))
	})
	ix.camps = camps
	words := (len(camps) + 63) / 64
	ix.words = words
	ix.scratch.New = func() any { return new(scratch) }

	servable := make(bitset, words)
	siteD, slotD := newDim(words), newDim(words)
	ix.lang, ix.geo, ix.device, ix.cat = newDim(words), newDim(words), newDim(words), newDim(words)
	ix.segs = newDim(words)
	ix.personal, ix.hasAll = make(bitset, words), make(bitset, words)
	ix.capped, ix.segExcluding = make(bitset, words), make(bitset, words)
	for i := range camps {
		e := &camps[i]
		ix.byID[e.c.ID] = i
		if e.off != "" {
			continue
		}
		servable.set(i)
		if pace != nil {
			e.pace = pace(e.c)
		}
		t := &e.c.Targeting
		siteD.set(i, words, t.Sites)
		slotD.set(i, words, t.Slots)
		ix.lang.set(i, words, t.Languages)
		ix.geo.set(i, words, t.Countries)
		ix.device.set(i, words, t.Devices)
		ix.cat.set(i, words, t.Categories)
		ix.segs.set(i, words, List{Include: t.Segments.Any})
		ix.segs.exclude(i, words, t.Segments.None)
		if len(t.Segments.Any) > 0 || len(t.Segments.All) > 0 {
			ix.personal.set(i)
		}
		if len(t.Segments.All) > 0 {
			ix.hasAll.set(i)
		}
		if len(e.caps) > 0 {
			ix.capped.set(i)
		}
		if len(t.Segments.None) > 0 {
			ix.segExcluding.set(i)
		}
	}
	for _, site := range s.Sites {
		if site.Status != Active {
			continue
		}
		se := &siteEntry{site: site, slots: map[string]*slotEntry{}}
		siteOK := make(bitset, words)
		var p plan
		p.reset(servable)
		siteD.add(&p, site.ID)
		for w := range siteOK {
			siteOK[w] = p.word(w)
		}
		for i := range site.Slots {
			sl := &site.Slots[i]
			sle := &slotEntry{slot: sl, sizes: sizesOf(sl.Sizes), base: make(bitset, words)}
			p.reset(siteOK)
			slotD.add(&p, site.ID+"/"+sl.ID)
			for w := range sle.base {
				sle.base[w] = p.word(w)
			}
			for j := range camps {
				if sle.base.has(j) && !anyFits(camps[j].creatives, sle) {
					sle.base[j>>6] &^= 1 << (uint(j) & 63)
				}
			}
			se.slots[sl.ID] = sle
		}
		ix.sites[site.ID] = se
	}
	return ix
}

// Len is the number of campaigns indexed, servable or not.
func (ix *Index) Len() int { return len(ix.camps) }

// dayHours compiles day parts into a bit per open hour, per weekday.
func dayHours(parts []DayPart) *[7]uint32 {
	dp := make([]decision.DayPart, len(parts))
	for i, p := range parts {
		dp[i] = decision.DayPart{From: p.From, To: p.To}
		for _, d := range p.Days {
			dp[i].Days = append(dp[i].Days, weekdays[d])
		}
	}
	return decision.Hours(dp)
}

// fits returns the creative's first size that the slot takes and its index
// in ce.sizes (0 for a native creative in a native slot).
func fits(ce *crEntry, sl *slotEntry) (size, int, bool) {
	if ce.cr.Type == Native {
		return size{}, 0, sl.slot.Native
	}
	for i, cs := range ce.sizes {
		for _, ss := range sl.sizes {
			if cs.s == ss.s {
				return cs, i, true
			}
		}
	}
	return size{}, 0, false
}

func anyFits(crs []crEntry, sl *slotEntry) bool {
	for i := range crs {
		if _, _, ok := fits(&crs[i], sl); ok {
			return true
		}
	}
	return false
}
