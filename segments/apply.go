package segments

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/adsyn/adsyn/segments/taxonomy"
)

// Policy says how events change a record. The zero value is not usable;
// start from DefaultPolicy.
type Policy struct {
	HalfLife     time.Duration // a score halves in this time without new contributions
	MinScore     float64       // scores that decay below this are dropped
	MaxSegments  int           // segments kept per record, highest scores first
	MaxLangs     int           // languages kept, most recent first
	MaxCampaigns int           // campaigns with frequency counters, most recent first
	MaxCapTimes  int           // impression times kept per campaign
	CapWindow    time.Duration // impression times older than this (before the newest) are dropped
	MaxApplied   int           // message sequences remembered against redelivery
}

// DefaultPolicy returns the defaults: a 14-day half-life, 64 segments, 4
// languages, 32 campaigns of at most 32 impressions within 30 days.
func DefaultPolicy() Policy {
	return Policy{
		HalfLife:     14 * 24 * time.Hour,
		MinScore:     0.01,
		MaxSegments:  64,
		MaxLangs:     4,
		MaxCampaigns: 32,
		MaxCapTimes:  32,
		CapWindow:    30 * 24 * time.Hour,
		MaxApplied:   64, // redeliveries come up to an ack wait (30 s) late: a busy visitor has had many messages since
	}
}

// Validate names the first field that is out of range.
func (p Policy) Validate() error {
	switch {
	case p.HalfLife < time.Minute:
		return errors.New("segments: policy: HalfLife must be at least a minute")
	case p.MinScore < 0 || p.MinScore >= 1:
		return errors.New("segments: policy: MinScore must be in [0, 1)")
	case p.MaxSegments < 1 || p.MaxSegments > 1024:
		return errors.New("segments: policy: MaxSegments must be 1-1024")
	case p.MaxLangs < 1 || p.MaxLangs > 16:
		return errors.New("segments: policy: MaxLangs must be 1-16")
	case p.MaxCampaigns < 1 || p.MaxCampaigns > 1024:
		return errors.New("segments: policy: MaxCampaigns must be 1-1024")
	case p.MaxCapTimes < 1 || p.MaxCapTimes > 1024:
		return errors.New("segments: policy: MaxCapTimes must be 1-1024")
	case p.CapWindow < time.Minute:
		return errors.New("segments: policy: CapWindow must be at least a minute")
	case p.MaxApplied < 1 || p.MaxApplied > 64:
		return errors.New("segments: policy: MaxApplied must be 1-64")
	}
	return nil
}

// change is what one event does to a record, as the builder keeps it
// between decoding and writing (it may be applied again after a conflict).
type change struct {
	seq       uint64 // stream sequence of the message that carried it
	ts        int64  // unix ms
	lang      string // primary subtag, or ""
	campaign  string // an impression's campaign, or ""
	contribs  []taxonomy.Contribution
	sensitive bool
}

// apply applies changes to r in order and returns how many counted (the
// others were in messages r had already applied, or predate r.Since). r is
// modified in place; tax, when not nil, drops segments it no longer has.
func (p *Policy) apply(r *Record, changes []change, tax *taxonomy.Taxonomy) (applied int) {
	before := len(r.Applied)
	for i := range changes {
		c := &changes[i]
		if slices.Contains(r.Applied[:before], c.seq) || c.ts <= r.Since {
			continue
		}
		applied++
		r.Events++
		if !slices.Contains(r.Applied[before:], c.seq) {
			r.Applied = append(r.Applied, c.seq)
		}
		if c.campaign != "" {
			p.addImpression(r, c.campaign, c.ts)
		}
		if c.sensitive {
			continue // counted, and nothing else: no language, no time (P1)
		}
		for _, ct := range c.contribs {
			p.addScore(r, ct, c.ts)
		}
		if c.lang != "" {
			p.addLang(r, c.lang)
		}
		r.LastSeen = max(r.LastSeen, c.ts)
	}
	if n := len(r.Applied); n > p.MaxApplied {
		r.Applied = append(r.Applied[:0], r.Applied[n-p.MaxApplied:]...)
	}
	p.trim(r, tax)
	return applied
}

func (p *Policy) addScore(r *Record, c taxonomy.Contribution, ts int64) {
	i, ok := slices.BinarySearchFunc(r.Segments, c.Segment, func(s Score, id string) int { return strings.Compare(s.ID, id) })
	if !ok {
		r.Segments = slices.Insert(r.Segments, i, Score{ID: c.Segment, Score: c.Weight, At: ts, Rule: c.Rule})
		return
	}
	s := &r.Segments[i]
	// Contributions commute: an older one is decayed to the score's time,
	// so the order in which builders apply events does not matter.
	if ts >= s.At {
		s.Score = s.Score*decay(ts-s.At, p.HalfLife) + c.Weight
		s.At, s.Rule = ts, c.Rule
	} else {
		s.Score += c.Weight * decay(s.At-ts, p.HalfLife)
	}
}

func (p *Policy) addLang(r *Record, lang string) {
	if i := slices.Index(r.Langs, lang); i >= 0 {
		kept := r.Langs[i] // the record's copy, not the event's string
		copy(r.Langs[1:i+1], r.Langs[:i])
		r.Langs[0] = kept
		return
	}
	r.Langs = slices.Insert(r.Langs, 0, strings.Clone(lang)) // not a part of the event, kept whole
	if len(r.Langs) > p.MaxLangs {
		r.Langs = r.Langs[:p.MaxLangs]
	}
}

func (p *Policy) addImpression(r *Record, campaign string, ts int64) {
	i, ok := slices.BinarySearchFunc(r.Caps, campaign, func(c Cap, id string) int { return strings.Compare(c.Campaign, id) })
	if !ok {
		r.Caps = slices.Insert(r.Caps, i, Cap{Campaign: strings.Clone(campaign)})
	}
	c := &r.Caps[i]
	j, _ := slices.BinarySearch(c.Times, ts)
	c.Times = slices.Insert(c.Times, j, ts)
}

// trim drops what the policy does not keep.
func (p *Policy) trim(r *Record, tax *taxonomy.Taxonomy) {
	now := r.LastSeen
	r.Segments = slices.DeleteFunc(r.Segments, func(s Score) bool {
		return s.Decayed(now, p.HalfLife) < p.MinScore || tax != nil && !tax.Has(s.ID)
	})
	if len(r.Segments) > p.MaxSegments {
		slices.SortFunc(r.Segments, func(a, b Score) int {
			da, db := a.Decayed(now, p.HalfLife), b.Decayed(now, p.HalfLife)
			switch {
			case da > db:
				return -1
			case da < db:
				return 1
			}
			return strings.Compare(a.ID, b.ID)
		})
		r.Segments = r.Segments[:p.MaxSegments]
		slices.SortFunc(r.Segments, func(a, b Score) int { return strings.Compare(a.ID, b.ID) })
	}
	window := p.CapWindow.Milliseconds()
	for i := range r.Caps {
		c := &r.Caps[i]
		if n := len(c.Times); n > 0 {
			cut, _ := slices.BinarySearch(c.Times, c.Times[n-1]-window)
			cut = max(cut, n-p.MaxCapTimes)
			if cut > 0 {
				c.Times = append(c.Times[:0], c.Times[cut:]...)
			}
		}
	}
	if len(r.Caps) > p.MaxCampaigns {
		// Keep the campaigns shown most recently.
		slices.SortFunc(r.Caps, func(a, b Cap) int { return cmpInt(last(b.Times), last(a.Times)) })
		r.Caps = r.Caps[:p.MaxCampaigns]
		slices.SortFunc(r.Caps, func(a, b Cap) int { return strings.Compare(a.Campaign, b.Campaign) })
	}
}

func last(t []int64) int64 {
	if len(t) == 0 {
		return 0
	}
	return t[len(t)-1]
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
