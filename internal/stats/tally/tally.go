package tally

import (
	"math"
	"strings"
	"time"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/stats/audience"
)

// RecKey names a record: a scope, an id and a unix hour.
type RecKey struct {
	Scope Scope
	ID    string
	Hour  int64
}

func (k RecKey) String() string { return KeyOf(k.Scope, k.ID, k.Hour) }

// Fact is what the aggregator keeps of an event.
type Fact struct {
	kind                           event.Kind
	Hour                           int64
	campaign, site, creative, slot string
	lang, country, device          string
	value                          float64
	click                          event.ID // a click's event id: fixed per token, so a replay has the same

	// A pageview's, search's or custom event's, for the site's audience.
	minute                       int64 // unix minute, for the realtime view
	visitor, url, referrer, name string
	browser, os                  string
}

// Counted reports whether events of kind k go into the statistics.
func Counted(k event.Kind) bool {
	switch k {
	case event.KindImpression, event.KindViewable, event.KindClick, event.KindConversion, event.KindCall:
		return true
	}
	return false
}

// Audience reports whether events of kind k go into a site's audience
// (audience.Hour): pageviews, searches and custom events.
func Audience(k event.Kind) bool {
	return k == event.KindPageview || k == event.KindSearch || k == event.KindCustom
}

// FactOf copies what counts of e. fallbackMS stands in for a missing
// timestamp (the message's). It reports false for events that count nowhere.
func FactOf(e *event.Event, fallbackMS int64) (Fact, bool) {
	if Audience(e.Kind) {
		return audienceFact(e, fallbackMS)
	}
	if !Counted(e.Kind) {
		return Fact{}, false
	}
	camp, site := e.Campaign, e.Site
	if !ValidID(camp) {
		camp = ""
	}
	if !ValidID(site) {
		site = ""
	}
	if camp == "" && site == "" {
		return Fact{}, false
	}
	ts := e.TS
	if ts <= 0 || ts > maxTS {
		ts = fallbackMS
	}
	f := Fact{
		kind: e.Kind, Hour: FloorDiv(ts, 3_600_000),
		campaign: camp, site: site, creative: e.Creative, slot: e.Slot,
		lang: e.Lang, country: e.Country, device: e.Device.Type,
		value: e.Value,
	}
	if e.Kind == event.KindClick {
		f.click = e.ID
	}
	if e.Kind == event.KindImpression {
		f.visitor = e.Visitor // a campaign's reach
	}
	return f, true
}

// audienceFact copies what a site's audience counts of e: only a site's.
func audienceFact(e *event.Event, fallbackMS int64) (Fact, bool) {
	if !ValidID(e.Site) {
		return Fact{}, false
	}
	ts := e.TS
	if ts <= 0 || ts > maxTS {
		ts = fallbackMS
	}
	return Fact{
		kind: e.Kind, Hour: FloorDiv(ts, 3_600_000), minute: FloorDiv(ts, 60_000), site: e.Site,
		lang: e.Lang, country: e.Country, device: e.Device.Type, browser: e.Device.Browser, os: e.Device.OS,
		visitor: e.Visitor, url: e.URL, referrer: e.Referrer, name: e.Name,
	}, true
}

// event returns the audience fields of f as an event, for audience.Hour.
func (f *Fact) event() event.Event {
	return event.Event{Kind: f.kind, Site: f.site, Visitor: f.visitor, URL: f.url, Referrer: f.referrer, Name: f.name,
		Lang: f.lang, Country: f.country, Device: event.Device{Type: f.device, OS: f.os, Browser: f.browser}}
}

// maxTS is the last millisecond of year 9999: beyond, a timestamp is taken
// for corrupt and the message's stands in.
var maxTS = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).UnixMilli()

func FloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// maxSpend bounds one impression's price (currency units), so a corrupt
// value cannot overflow the micro-unit sums.
const maxSpend = 1000.0

func micros(v float64) int64 {
	if math.IsNaN(v) || v <= 0 {
		return 0
	}
	return int64(math.Round(min(v, maxSpend) * 1e6))
}

// increment is what f adds to its records.
func (f *Fact) increment(cpm func(string) (float64, bool)) Counters {
	var c Counters
	switch f.kind {
	case event.KindImpression:
		c.Impressions = 1
		switch {
		case f.value > 0:
			c.SpendMicros = micros(f.value)
		case cpm != nil && f.campaign != "":
			if v, ok := cpm(f.campaign); ok {
				c.SpendMicros = micros(v / 1000)
			}
		}
	case event.KindViewable:
		c.Viewable = 1
	case event.KindClick:
		c.Clicks = 1
	case event.KindConversion:
		c.Conversions = 1
	case event.KindCall:
		c.Calls = 1
		c.Conversions = 1
	}
	return c
}

// SeqRange is the first and last stream sequence of one partition's
// messages that contributed to a Delta; zero when none did.
type SeqRange struct{ Min, Max uint64 }

// Delta is what one flush adds to one record: its totals, and an entry per
// event holding the event's breakdown values by number (interner.id). The
// breakdowns are summed when the record is written, one record at a time,
// which keeps the hot path to appends.
type Delta struct {
	Counters
	Key     RecKey
	Entries []entry
	Hits    []hit              // a site's pageviews, searches and custom events
	Seqs    []SeqRange         // by partition
	Reach   *audience.Visitors // a campaign's visitors with an impression; nil when none
	// ReachImpressions counts the impressions Reach's visitors had.
	ReachImpressions int64
}

// entry is one event's contribution to a record's breakdowns.
type entry struct {
	spend int64
	ids   [NumDims]uint32
	kind  event.Kind
	click event.ID // of a click, to count it once per record (Record.Clicks)
}

// hit is one pageview's, search's or custom event's contribution to a
// site's audience, summed into an audience.Hour when the record is
// written (Fold.hits): the hot path only numbers its values.
type hit struct {
	ids        [audience.NumDimensions]uint32 // value number + 1; 0: no value
	visitor    uint64                         // audience.Hash of the visitor id, if hasVisitor
	hasVisitor bool
	kind       event.Kind
}

func (e *entry) counters() Counters {
	f := Fact{kind: e.kind}
	c := f.increment(nil)
	c.SpendMicros = e.spend
	return c
}

// Empty reports whether no message contributed to d.
func (d *Delta) Empty() bool {
	for _, r := range d.Seqs {
		if r.Max > 0 {
			return false
		}
	}
	return true
}

// Reset clears d for reuse, keeping its room.
func (d *Delta) Reset() {
	d.Counters = Counters{}
	d.Entries, d.Hits = d.Entries[:0], d.Hits[:0]
	clear(d.Seqs)
	d.Reach, d.ReachImpressions = nil, 0
}

// interner numbers the values of one dimension within a batch.
type interner struct {
	ids  map[string]uint32
	vals []string
}

func (in *interner) id(s string) uint32 { return in.number(s, normValue) }

// number returns s's number, giving the next one to a value not seen yet;
// norm bounds the value kept.
func (in *interner) number(s string, norm func(string) string) uint32 {
	if id, ok := in.ids[s]; ok {
		return id
	}
	if in.ids == nil {
		in.ids = map[string]uint32{}
	}
	id := uint32(len(in.vals))
	s = strings.Clone(s) // a fact's strings point into its message
	in.vals = append(in.vals, norm(s))
	in.ids[s] = id
	return id
}

func asIs(s string) string { return s }

// Names maps a batch's value numbers back to values, per dimension: the
// records' breakdowns and the sites' audience breakdowns.
type Names struct {
	Dims     [NumDims][]string
	Audience [audience.NumDimensions][]string
}

// Tally sums facts into deltas per record.
type Tally struct {
	Recs  map[uint64]*Delta // by packKey
	vals  [NumDims]interner
	aud   [audience.NumDimensions]interner
	parts int
	cpm   func(string) (float64, bool)
	Spare *[]*Delta // deltas of written batches, cleared, to reuse
}

func New(parts int, cpm func(string) (float64, bool)) *Tally {
	return &Tally{Recs: map[uint64]*Delta{}, parts: parts, cpm: cpm}
}

// packKey numbers a record within a batch: scope, the id's value number,
// and the hour (below 2^32 for any timestamp FactOf lets through).
func packKey(s Scope, id uint32, hour int64) uint64 {
	return uint64(s)<<63 | uint64(id&0x7fffffff)<<32 | uint64(uint32(hour))
}

// Get returns the Delta of k, if any.
func (t *Tally) Get(k RecKey) *Delta {
	dim := DimCampaign
	if k.Scope == ScopeSite {
		dim = DimSite
	}
	id, ok := t.vals[dim].ids[k.ID]
	if !ok {
		return nil
	}
	return t.Recs[packKey(k.Scope, id, k.Hour)]
}

// Names returns the values numbered so far; later numbers do not move them.
func (t *Tally) Names() *Names {
	var n Names
	for d := range t.vals {
		n.Dims[d] = t.vals[d].vals
	}
	for d := range t.aud {
		n.Audience[d] = t.aud[d].vals
	}
	return &n
}

// Floor is, for the records it names, the last sequence per partition
// already applied: add counts only facts of later messages into them, and
// nothing into other records.
type Floor map[RecKey][]uint64

// Add counts f, from the message of partition p with stream sequence seq.
func (t *Tally) Add(f *Fact, p int, seq uint64, only Floor) {
	if Audience(f.kind) {
		if d := t.deltaFor(ScopeSite, f.site, t.vals[DimSite].id(f.site), f.Hour, p, seq, only); d != nil {
			d.Hits = append(d.Hits, t.hitOf(f))
		}
		return
	}
	inc := f.increment(t.cpm)
	e := entry{spend: inc.SpendMicros, kind: f.kind, click: f.click}
	for _, d := range [...]struct {
		dim Dim
		v   string
	}{
		{DimCreative, f.creative}, {DimSite, f.site}, {DimCampaign, f.campaign},
		{DimSlot, f.slot}, {DimLanguage, f.lang}, {DimCountry, f.country}, {DimDevice, f.device},
	} {
		e.ids[d.dim] = t.vals[d.dim].id(d.v)
	}
	if f.campaign != "" {
		if d := t.deltaFor(ScopeCampaign, f.campaign, e.ids[DimCampaign], f.Hour, p, seq, only); d != nil {
			d.Add(&inc)
			d.Entries = append(d.Entries, e)
			if f.visitor != "" {
				if d.Reach == nil {
					d.Reach = &audience.Visitors{}
				}
				d.Reach.Add(f.visitor)
				d.ReachImpressions++
			}
		}
	}
	if f.site != "" {
		if d := t.deltaFor(ScopeSite, f.site, e.ids[DimSite], f.Hour, p, seq, only); d != nil {
			d.Add(&inc)
			d.Entries = append(d.Entries, e)
		}
	}
}

// hitOf numbers the audience values of f: a pageview counts in every
// breakdown but the event name's, a custom event only there (as
// audience.Hour.Add counts them).
func (t *Tally) hitOf(f *Fact) hit {
	h := hit{kind: f.kind}
	if f.visitor != "" {
		h.visitor, h.hasVisitor = audience.Hash(f.visitor), true
	}
	if f.kind == event.KindSearch {
		return h
	}
	e := f.event()
	var v [audience.NumDimensions]string
	audience.Values(&e, &v)
	for d, s := range v {
		if s == "" || (d == int(audience.EventName)) != (f.kind == event.KindCustom) {
			continue
		}
		h.ids[d] = t.aud[d].number(s, asIs) + 1
	}
	return h
}

func (t *Tally) deltaFor(s Scope, id string, num uint32, hour int64, p int, seq uint64, only Floor) *Delta {
	if only != nil {
		fl, ok := only[RecKey{s, id, hour}]
		if !ok || p < len(fl) && seq <= fl[p] {
			return nil
		}
	}
	k := packKey(s, num, hour)
	d := t.Recs[k]
	if d == nil {
		if t.Spare != nil && len(*t.Spare) > 0 {
			d = (*t.Spare)[len(*t.Spare)-1]
			*t.Spare = (*t.Spare)[:len(*t.Spare)-1]
		} else {
			d = &Delta{Seqs: make([]SeqRange, t.parts)}
		}
		d.Key = RecKey{s, strings.Clone(id), hour}
		t.Recs[k] = d
	}
	r := &d.Seqs[p]
	if r.Min == 0 || seq < r.Min {
		r.Min = seq
	}
	r.Max = max(r.Max, seq)
	return d
}
