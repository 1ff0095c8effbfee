package tally

import (
	"strings"
	"sync"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/stats/audience"
)

// LiveMinutes is how far back Live remembers, in minutes: the realtime
// view's window and a margin for late events.
const LiveMinutes = 10

// Live counts each site's pageviews and visitors per minute over the last
// LiveMinutes, in memory, for the realtime view. It holds at most maxSites
// sites; a site seen while it is full waits until one falls silent, and is
// counted by Dropped. Safe for concurrent use.
type Live struct {
	mu       sync.Mutex
	sites    map[string]*[LiveMinutes]liveMinute
	maxSites int
	dropped  uint64
}

type liveMinute struct {
	minute    int64 // unix minute this slot holds
	pageviews uint64
	visitors  audience.Visitors
}

// NewLive returns an empty Live for at most maxSites sites.
func NewLive(maxSites int) *Live {
	return &Live{sites: map[string]*[LiveMinutes]liveMinute{}, maxSites: maxSites}
}

// Add counts the pageview facts of now's minute or the LiveMinutes before
// it; other facts and older ones are not live.
func (l *Live) Add(facts []Fact, nowMinute int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range facts {
		if f := &facts[i]; f.kind == event.KindPageview && f.minute > nowMinute-LiveMinutes && f.minute <= nowMinute+1 {
			l.add(f, nowMinute)
		}
	}
}

// add counts f; l.mu is held.
func (l *Live) add(f *Fact, nowMinute int64) {
	s := l.sites[f.site]
	if s == nil {
		if len(l.sites) >= l.maxSites && !l.evict(nowMinute) {
			l.dropped++
			return
		}
		s = &[LiveMinutes]liveMinute{}
		l.sites[strings.Clone(f.site)] = s // f's strings point into its message
	}
	m := &s[f.minute%LiveMinutes]
	if m.minute != f.minute {
		*m = liveMinute{minute: f.minute}
	}
	m.pageviews++
	m.visitors.Add(f.visitor)
}

// evict forgets one site with nothing in the window; l.mu is held.
func (l *Live) evict(nowMinute int64) bool {
	for site, s := range l.sites {
		silent := true
		for i := range s {
			if s[i].minute > nowMinute-LiveMinutes {
				silent = false
				break
			}
		}
		if silent {
			delete(l.sites, site)
			return true
		}
	}
	return false
}

// Window returns site's pageviews and visitors in the minutes (from, to]:
// the visitors as a sketch, to merge with other aggregators'.
func (l *Live) Window(site string, from, to int64) (uint64, *audience.Visitors, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pv uint64
	v := &audience.Visitors{}
	s := l.sites[site]
	if s == nil {
		return 0, v, nil
	}
	for i := range s {
		if m := &s[i]; m.minute > from && m.minute <= to {
			pv += m.pageviews
			if err := v.Merge(&m.visitors); err != nil {
				return 0, nil, err
			}
		}
	}
	return pv, v, nil
}

// Dropped counts pageviews not made live because Live was full.
func (l *Live) Dropped() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}
