package adserver

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/adsyn/adsyn/adserver/decision"
	"github.com/adsyn/adsyn/segments"
)

// Request is what the decision knows of one ad request. Everything personal
// in it (Record, Recent) is only set when consent allows (see Edge.Ad).
type Request struct {
	Now        int64 // unix ms
	Site, Slot string
	Lang       string   // primary language subtag, "" unknown
	Country    string   // ISO 3166-1 alpha-2, "" unknown
	Region     string   // ISO 3166-2 ("DE-BY"), "" unknown
	Device     string   // desktop, mobile, tablet, tv, bot, unknown
	Categories []string // page categories (the site's are added by the index)
	// Personalize is consent to select ads from the visitor's profile (P3).
	// Without it segment targeting is not used and campaigns that need it
	// are not eligible.
	Personalize bool
	Record      *segments.Record // the visitor's record: frequency caps, and segments with Personalize
	// RecordUnknown: the visitor has an id, but their record was not read
	// in time (WithRecordWait). Campaigns with frequency caps, and with
	// Personalize those with segment exclusions, are not eligible: the
	// record could rule them out (failing closed).
	RecordUnknown bool
	Recent        []Impression // this edge's own recent impressions to the visitor
	Rand          uint64       // seed of the draw among equals
}

// Impression is one ad this edge showed a visitor, for frequency capping
// before the segment builder has counted it.
type Impression = decision.Impression

// Decision is the chosen ad. Its pointers point into the Index.
type Decision struct {
	Campaign *Campaign
	Creative *Creative
	Content  *Content // the creative's content in the request's language
	Landing  string
	Size     string // "300x250"; "" for native
	W, H     int
	CPM      int64 // micros
	Hash     uint64
	Pace     *Pace
	Doc      *docTmpl // Content's iframe document; nil: render it per request
}

// Pace is a campaign's delivery state on this edge, carried over from one
// index to the next. The pacer sets limit from the budgets and what every
// edge has spent; the decision serves while served < limit.
type Pace struct {
	served atomic.Int64 // impressions this edge served since it started
	cost   atomic.Int64 // their CPM prices summed, in micros (so cost/1000 is money)
	limit  atomic.Int64
}

// NewPace returns an unlimited pace.
func NewPace() *Pace {
	p := &Pace{}
	p.limit.Store(math.MaxInt64)
	return p
}

// Charge records one impression at cpm micros.
func (p *Pace) Charge(cpm int64) {
	if p != nil {
		p.served.Add(1)
		p.cost.Add(cpm)
	}
}

func (p *Pace) open() bool { return p == nil || p.served.Load() < p.limit.Load() }

// block says why the campaign may not serve req now, cheapest test first.
func (e *entry) block(req *Request) decision.Block {
	if b := e.sched.Flight(req.Now); b != decision.Serve {
		return b
	}
	switch {
	case !e.pace.open():
		return decision.OverBudget
	case !e.sched.Open(req.Now):
		return decision.OutsideDayParts
	case e.all != nil && (!req.Personalize || !hasAllSegments(req.Record, e.all)):
		return decision.NotInAllSegments
	case e.caps != nil && e.capped(req) >= 0:
		return decision.Capped
	}
	return decision.Serve
}

func hasAllSegments(r *segments.Record, all []string) bool {
	if r == nil {
		return false
	}
	for _, id := range all {
		if _, ok := slices.BinarySearchFunc(r.Segments, id, cmpScore); !ok {
			return false
		}
	}
	return true
}

func cmpScore(s segments.Score, id string) int { return strings.Compare(s.ID, id) }
func cmpCap(c segments.Cap, id string) int     { return strings.Compare(c.Campaign, id) }

// capped returns the index of the first frequency cap reached, or -1. It
// counts the builder's record and this edge's impressions newer than it.
func (e *entry) capped(req *Request) int {
	var times []int64
	var seen int64
	if r := req.Record; r != nil {
		seen = r.LastSeen
		if i, ok := slices.BinarySearchFunc(r.Caps, e.c.ID, cmpCap); ok {
			times = r.Caps[i].Times
		}
	}
	return decision.CapReached(e.caps, req.Now, times, seen, req.Recent, e.idHash)
}

// plan turns req into bitset terms over the slot's base.
func (ix *Index) plan(p *plan, se *siteEntry, sl *slotEntry, req *Request) {
	p.reset(sl.base)
	// The most selective groups first: a word that turns 0 skips the rest.
	if req.Personalize {
		var segs []segments.Score
		if req.Record != nil {
			segs = req.Record.Segments
		}
		// Any lists are a group only when some campaign has one; None
		// lists exclude either way.
		if ix.segs.used {
			p.group(ix.segs.open)
		}
		for i := range segs {
			if dv := ix.segs.vals[segs[i].ID]; dv != nil {
				if dv.incl != nil { // only when segs.used
					p.or(dv.incl)
				}
				if dv.excl != nil {
					p.nots = append(p.nots, dv.excl)
				}
			}
		}
		if req.RecordUnknown {
			p.nots = append(p.nots, ix.segExcluding)
		}
	} else {
		p.nots = append(p.nots, ix.personal)
	}
	if req.RecordUnknown {
		p.nots = append(p.nots, ix.capped)
	}
	if ix.cat.used {
		ix.cat.add(p, req.Categories...)
		// The site's categories join the same group.
		for _, v := range se.site.Categories {
			p.value(ix.cat.vals[v])
		}
	}
	ix.lang.add(p, req.Lang)
	ix.geo.add(p, req.Country, req.Region)
	ix.device.add(p, req.Device)
}

// filter writes into acc every campaign that passes targeting (for tests
// and explain; Decide evaluates lazily).
func (ix *Index) filter(acc bitset, se *siteEntry, sl *slotEntry, req *Request) {
	var p plan
	ix.plan(&p, se, sl, req)
	for w := range acc {
		acc[w] = p.word(w)
	}
}

// Decide chooses the ad for req: among the campaigns that pass targeting,
// flight, budget and pacing, day-parting and frequency caps, the highest tier
// (lowest Priority), then the highest eCPM, then a draw weighted by Weight
// among equals. It allocates nothing.
func (ix *Index) Decide(req *Request) (Decision, bool) {
	se := ix.sites[req.Site]
	if se == nil {
		return Decision{}, false
	}
	sl := se.slots[req.Slot]
	if sl == nil {
		return Decision{}, false
	}
	sc := ix.scratch.Get().(*scratch)
	defer ix.scratch.Put(sc)
	ix.plan(&sc.plan, se, sl, req)
	best := ix.pick(&sc.plan, req)
	if best < 0 {
		return Decision{}, false
	}
	return ix.creative(best, sl, req)
}

// pick returns the winner among the candidates of p, or -1. Campaigns are
// in rank order, so it stops at the first one ranking below the winner.
func (ix *Index) pick(p *plan, req *Request) int {
	draw := decision.NewDraw(req.Rand)
	best := -1
	for w := range p.base {
		word := p.word(w)
		for word != 0 {
			i := w<<6 | bits.TrailingZeros64(word)
			word &= word - 1
			e := &ix.camps[i]
			if best >= 0 && (e.prio != ix.camps[best].prio || e.ecpm != ix.camps[best].ecpm) {
				return best // rank order: everything after ranks lower
			}
			if e.block(req) != decision.Serve {
				continue
			}
			if draw.Offer(e.weight) {
				best = i
			}
		}
	}
	return best
}

// creative draws, weighted, among the campaign's creatives that fit the slot.
func (ix *Index) creative(i int, sl *slotEntry, req *Request) (Decision, bool) {
	e := &ix.camps[i]
	var total uint64
	for k := range e.creatives {
		if _, _, ok := fits(&e.creatives[k], sl); ok {
			total += e.creatives[k].weight
		}
	}
	if total == 0 {
		return Decision{}, false
	}
	r := splitmix(req.Rand^e.idHash) % total
	for k := range e.creatives {
		ce := &e.creatives[k]
		sz, si, ok := fits(ce, sl)
		if !ok {
			continue
		}
		if r >= ce.weight {
			r -= ce.weight
			continue
		}
		d := Decision{Campaign: e.c, Creative: ce.cr, Content: &ce.cr.Content, Landing: ce.cr.Landing,
			Size: sz.s, W: sz.w, H: sz.h, CPM: e.ecpm, Hash: e.idHash, Pace: e.pace, Doc: ce.docs[si]}
		if v, ok := ce.variants[req.Lang]; ok && req.Lang != "" {
			d.Content, d.Doc = &v.Content, v.docs[si]
			if v.Landing != "" {
				d.Landing = v.Landing
			}
		}
		return d, true
	}
	return Decision{}, false
}

// splitmix is decision.Splitmix, for the draw among creatives.
func splitmix(x uint64) uint64 { return decision.Splitmix(x) }

// Verdict says why one campaign was or was not chosen.
type Verdict struct {
	Campaign   string   `json:"campaign"`
	Advertiser string   `json:"advertiser"`
	Name       string   `json:"name"`
	Priority   int      `json:"priority"`
	CPM        float64  `json:"cpm"`
	Eligible   bool     `json:"eligible"`
	Chosen     bool     `json:"chosen"`
	Reasons    []string `json:"reasons"`
}

// Explanation is the decision for one request, campaign by campaign, in rank order.
type Explanation struct {
	Site      string    `json:"site"`
	Slot      string    `json:"slot"`
	Chosen    string    `json:"chosen,omitempty"`
	Creative  string    `json:"creative,omitempty"`
	Campaigns []Verdict `json:"campaigns"`
}

// Explain evaluates req against every campaign, rule by rule, without the
// bitsets, and reports Decide's choice for the same request. It is the slow
// path for operators; its agreement with Decide is tested.
func (ix *Index) Explain(req *Request) Explanation {
	ex := Explanation{Site: req.Site, Slot: req.Slot, Campaigns: make([]Verdict, 0, len(ix.camps))}
	d, ok := ix.Decide(req)
	if ok {
		ex.Chosen, ex.Creative = d.Campaign.ID, d.Creative.ID
	}
	se := ix.sites[req.Site]
	var sl *slotEntry
	if se != nil {
		sl = se.slots[req.Slot]
	}
	var segs []segments.Score
	if req.Record != nil && req.Personalize {
		segs = req.Record.Segments
	}
	for i := range ix.camps {
		e := &ix.camps[i]
		c := e.c
		v := Verdict{Campaign: c.ID, Advertiser: c.Advertiser, Name: c.Name, Priority: c.Priority, CPM: c.CPM}
		why := func(format string, args ...any) { v.Reasons = append(v.Reasons, fmt.Sprintf(format, args...)) }
		if e.off != "" {
			why("%s", e.off)
		}
		t := &c.Targeting
		switch {
		case se == nil:
			why("site %q is unknown or not active", req.Site)
		case sl == nil:
			why("slot %q is not a slot of site %q", req.Slot, req.Site)
		default:
			listWhy(why, "site", t.Sites, req.Site)
			listWhy(why, "slot", t.Slots, req.Site+"/"+req.Slot)
			if e.off == "" && !anyFits(e.creatives, sl) {
				why("no creative fits the slot (sizes %v, native %v)", sl.slot.Sizes, sl.slot.Native)
			}
		}
		listWhy(why, "language", t.Languages, req.Lang)
		listWhy(why, "country", t.Countries, req.Country, req.Region)
		listWhy(why, "device", t.Devices, req.Device)
		var cats []string
		cats = append(cats, req.Categories...)
		if se != nil {
			cats = append(cats, se.site.Categories...)
		}
		listWhy(why, "category", t.Categories, cats...)
		sr := t.Segments
		if !req.Personalize {
			if len(sr.Any) > 0 || len(sr.All) > 0 {
				why("targets segments, and there is no consent to personalization")
			}
		} else {
			if len(sr.Any) > 0 && !slices.ContainsFunc(segs, func(s segments.Score) bool { return slices.Contains(sr.Any, s.ID) }) {
				why("visitor is in none of the segments %v", sr.Any)
			}
			for _, s := range segs {
				if slices.Contains(sr.None, s.ID) {
					why("visitor is in the excluded segment %s", s.ID)
				}
			}
			if req.RecordUnknown && len(sr.None) > 0 {
				why("excludes segments, and the visitor's record was not read in time")
			}
		}
		if req.RecordUnknown && len(c.Caps) > 0 {
			why("has frequency caps, and the visitor's record was not read in time")
		}
		if e.off == "" {
			switch e.block(req) {
			case decision.NotStarted:
				why("flight starts %s", c.Start.UTC().Format(time.RFC3339))
			case decision.Ended:
				why("flight ended %s", c.End.UTC().Format(time.RFC3339))
			case decision.OverBudget:
				why("budget spent or paced out for now")
			case decision.OutsideDayParts:
				why("outside its day_parts")
			case decision.NotInAllSegments:
				why("visitor is not in all of the segments %v", sr.All)
			case decision.Capped:
				k := e.capped(req)
				why("frequency cap of %d per %s reached", c.Caps[k].Count, time.Duration(c.Caps[k].Window))
			}
		}
		v.Eligible = len(v.Reasons) == 0
		if v.Eligible && ok {
			switch w := ix.camps[ix.byID[ex.Chosen]]; {
			case c.ID == ex.Chosen:
				v.Chosen = true
				v.Reasons = []string{"chosen"}
			case e.prio == w.prio && e.ecpm == w.ecpm:
				v.Reasons = []string{"eligible; lost the weighted draw among equals to " + ex.Chosen}
			default:
				v.Reasons = []string{"eligible; outranked by " + ex.Chosen}
			}
		}
		ex.Campaigns = append(ex.Campaigns, v)
	}
	return ex
}

// listWhy adds the reason an include/exclude list rejects vals.
func listWhy(why func(string, ...any), name string, l List, vals ...string) {
	has := func(list []string) string {
		for _, v := range vals {
			if v != "" && slices.Contains(list, v) {
				return v
			}
		}
		return ""
	}
	if len(l.Include) > 0 && has(l.Include) == "" {
		why("%s %q is not among %v", name, strings.Join(vals, ","), l.Include)
	}
	if x := has(l.Exclude); x != "" {
		why("%s %q is excluded", name, x)
	}
}
