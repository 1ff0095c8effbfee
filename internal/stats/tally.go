package stats

import (
	"math"
	"time"

	"github.com/adsyn/adsyn/internal/event"
)

// recKey names a record: a scope, an id and a unix hour.
type recKey struct {
	scope Scope
	id    string
	hour  int64
}

func (k recKey) String() string { return keyOf(k.scope, k.id, k.hour) }

// fact is what the aggregator keeps of an event.
type fact struct {
	kind                           event.Kind
	hour                           int64
	campaign, site, creative, slot string
	lang, country, device          string
	value                          float64
	click                          event.ID // a click's event id: fixed per token, so a replay has the same
}

// counted reports whether events of kind k go into the statistics.
func counted(k event.Kind) bool {
	switch k {
	case event.KindImpression, event.KindViewable, event.KindClick, event.KindConversion, event.KindCall:
		return true
	}
	return false
}

// factOf copies what counts of e. fallbackMS stands in for a missing
// timestamp (the message's). It reports false for events that count nowhere.
func factOf(e *event.Event, fallbackMS int64) (fact, bool) {
	if !counted(e.Kind) {
		return fact{}, false
	}
	camp, site := e.Campaign, e.Site
	if !ValidID(camp) {
		camp = ""
	}
	if !ValidID(site) {
		site = ""
	}
	if camp == "" && site == "" {
		return fact{}, false
	}
	ts := e.TS
	if ts <= 0 || ts > maxTS {
		ts = fallbackMS
	}
	f := fact{
		kind: e.Kind, hour: floorDiv(ts, 3_600_000),
		campaign: camp, site: site, creative: e.Creative, slot: e.Slot,
		lang: e.Lang, country: e.Country, device: e.Device.Type,
		value: e.Value,
	}
	if e.Kind == event.KindClick {
		f.click = e.ID
	}
	return f, true
}

// maxTS is the last millisecond of year 9999: beyond, a timestamp is taken
// for corrupt and the message's stands in.
var maxTS = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).UnixMilli()

func floorDiv(a, b int64) int64 {
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
func (f *fact) increment(cpm func(string) (float64, bool)) Counters {
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

// seqRange is the first and last stream sequence of one partition's
// messages that contributed to a delta; zero when none did.
type seqRange struct{ min, max uint64 }

// delta is what one flush adds to one record: its totals, and an entry per
// event holding the event's breakdown values by number (tally.intern). The
// breakdowns are summed when the record is written, one record at a time,
// which keeps the hot path to appends.
type delta struct {
	Counters
	key     recKey
	entries []entry
	seqs    []seqRange // by partition
}

// entry is one event's contribution to a record's breakdowns.
type entry struct {
	spend int64
	ids   [numDims]uint32
	kind  event.Kind
	click event.ID // of a click, to count it once per record (Record.Clicks)
}

func (e *entry) counters() Counters {
	f := fact{kind: e.kind}
	c := f.increment(nil)
	c.SpendMicros = e.spend
	return c
}

// reset clears d for reuse, keeping its room.
func (d *delta) reset() {
	d.Counters = Counters{}
	d.entries = d.entries[:0]
	clear(d.seqs)
}

// interner numbers the values of one dimension within a batch.
type interner struct {
	ids  map[string]uint32
	vals []string
}

func (in *interner) id(s string) uint32 {
	if id, ok := in.ids[s]; ok {
		return id
	}
	if in.ids == nil {
		in.ids = map[string]uint32{}
	}
	id := uint32(len(in.vals))
	in.vals = append(in.vals, normValue(s))
	in.ids[s] = id
	return id
}

// names maps a batch's value numbers back to values, per dimension.
type names [numDims][]string

// tally sums facts into deltas per record.
type tally struct {
	recs  map[uint64]*delta // by packKey
	vals  [numDims]interner
	parts int
	cpm   func(string) (float64, bool)
	spare *[]*delta // deltas of written batches, cleared, to reuse
}

func newTally(parts int, cpm func(string) (float64, bool)) *tally {
	return &tally{recs: map[uint64]*delta{}, parts: parts, cpm: cpm}
}

// packKey numbers a record within a batch: scope, the id's value number,
// and the hour (below 2^32 for any timestamp factOf lets through).
func packKey(s Scope, id uint32, hour int64) uint64 {
	return uint64(s)<<63 | uint64(id&0x7fffffff)<<32 | uint64(uint32(hour))
}

// get returns the delta of k, if any.
func (t *tally) get(k recKey) *delta {
	dim := DimCampaign
	if k.scope == ScopeSite {
		dim = DimSite
	}
	id, ok := t.vals[dim].ids[k.id]
	if !ok {
		return nil
	}
	return t.recs[packKey(k.scope, id, k.hour)]
}

// names returns the values numbered so far; later numbers do not move them.
func (t *tally) names() *names {
	var n names
	for d := range t.vals {
		n[d] = t.vals[d].vals
	}
	return &n
}

// floor is, for the records it names, the last sequence per partition
// already applied: add counts only facts of later messages into them, and
// nothing into other records.
type floor map[recKey][]uint64

// add counts f, from the message of partition p with stream sequence seq.
func (t *tally) add(f *fact, p int, seq uint64, only floor) {
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
		if d := t.delta(ScopeCampaign, f.campaign, e.ids[DimCampaign], f.hour, p, seq, only); d != nil {
			d.add(&inc)
			d.entries = append(d.entries, e)
		}
	}
	if f.site != "" {
		if d := t.delta(ScopeSite, f.site, e.ids[DimSite], f.hour, p, seq, only); d != nil {
			d.add(&inc)
			d.entries = append(d.entries, e)
		}
	}
}

func (t *tally) delta(s Scope, id string, num uint32, hour int64, p int, seq uint64, only floor) *delta {
	if only != nil {
		fl, ok := only[recKey{s, id, hour}]
		if !ok || p < len(fl) && seq <= fl[p] {
			return nil
		}
	}
	k := packKey(s, num, hour)
	d := t.recs[k]
	if d == nil {
		if t.spare != nil && len(*t.spare) > 0 {
			d = (*t.spare)[len(*t.spare)-1]
			*t.spare = (*t.spare)[:len(*t.spare)-1]
		} else {
			d = &delta{seqs: make([]seqRange, t.parts)}
		}
		d.key = recKey{s, id, hour}
		t.recs[k] = d
	}
	r := &d.seqs[p]
	if r.min == 0 || seq < r.min {
		r.min = seq
	}
	r.max = max(r.max, seq)
	return d
}
