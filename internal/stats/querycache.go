package stats

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/stats/audience"
	"github.com/adsyn/adsyn/internal/stats/tally"
)

// DefaultQueryCache is the memory the stats API keeps decoded records and
// merged days in, by default.
const DefaultQueryCache = 64 << 20

// fetchOneByOne is how many changed records a query fetches by revision,
// one direct get each; with more, one pass over the id's keys is cheaper.
const fetchOneByOne = 32

// queryCache keeps what range queries decoded: each record by key and
// revision, and each whole day's visitors merged. A query then reads only
// its keys' revisions (headers, no values), fetches and decodes the records
// that changed since, and merges a month's visitors from thirty day
// sketches rather than 720 hourly ones. Cached values are shared by
// concurrent queries and never modified. The memory is bounded: least
// recently used entries go first.
type queryCache struct {
	max int64

	mu    sync.Mutex
	size  int64
	lru   list.List // of *cacheEntry, most recent first
	items map[string]*list.Element

	hits, misses, fetched *metrics.Counter
}

type cacheEntry struct {
	key  string
	rev  uint64 // a record's revision; a day's fingerprint of its hours' revisions
	mask tally.DimMask
	rec  *Record
	day  *daySum
	size int64
}

// daySum is one whole day of an id's records merged: the visitors of a
// site's audience and of a campaign's reach (nil: none).
type daySum struct {
	visitors, reach *audience.Visitors
}

// daySumSize is what a day's sums may take: two dense sketches.
const daySumSize = 2*(16<<10) + 256

func newQueryCache(max int64, reg *metrics.Registry) *queryCache {
	if max <= 0 {
		return nil
	}
	const name, help = "adsyn_stats_query_cache_total", "Stats query cache lookups of records and merged days: hit, miss (fetched, or merged again), and records fetched."
	c := &queryCache{
		max: max, items: map[string]*list.Element{},
		hits:    reg.Counter(name, help, "result", "hit"),
		misses:  reg.Counter(name, help, "result", "miss"),
		fetched: reg.Counter(name, help, "result", "fetched"),
	}
	reg.Gauge("adsyn_stats_query_cache_bytes", "Estimated memory held by the stats query cache.", func() float64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return float64(c.size)
	})
	return c
}

// get returns the entry of key if its revision is rev and, for a record,
// its decoded dimensions include want.
func (c *queryCache) get(key string, rev uint64, want tally.DimMask) (e *cacheEntry, stale *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		c.misses.Inc()
		return nil, nil
	}
	e = el.Value.(*cacheEntry)
	if e.rev != rev || e.mask&want != want {
		c.misses.Inc()
		return nil, e
	}
	c.lru.MoveToFront(el)
	c.hits.Inc()
	return e, nil
}

// put keeps e, replacing what key held, and evicts the least recently used
// entries past the bound.
func (c *queryCache) put(e *cacheEntry) {
	if e.size > c.max/4 {
		return // one entry may not push out most of the others
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[e.key]; ok {
		c.size -= el.Value.(*cacheEntry).size
		c.lru.Remove(el)
	}
	c.items[e.key] = c.lru.PushFront(e)
	c.size += e.size
	for c.size > c.max {
		last := c.lru.Back()
		old := last.Value.(*cacheEntry)
		c.lru.Remove(last)
		delete(c.items, old.key)
		c.size -= old.size
	}
}

// recordSize estimates what a decoded record holds in memory from its
// encoded size and its number of breakdown values.
func recordSize(encoded int, rec *Record) int64 {
	n := 0
	for _, m := range rec.Dims {
		n += len(m)
	}
	if rec.Audience != nil {
		for d := range rec.Audience.Breakdowns {
			n += len(rec.Audience.Breakdowns[d].Counts)
		}
	}
	return int64(encoded) + 64*int64(n) + 256
}

// keyRev is one key of a range at its newest revision.
type keyRev struct {
	hour int64
	key  string
	rev  uint64
}

// readRange returns what the package's readRange does, through the cache.
func (c *queryCache) readRange(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, s Scope, id string, from, to int64, want tally.DimMask) (map[int64]*Record, map[int64]*daySum, error) {
	if !ValidID(id) {
		return nil, nil, ErrBadID
	}
	var keys []keyRev
	err := bus.Latest(ctx, js, bus.BucketStats, s.Prefix()+"."+id+".*", true, func(key string, m jetstream.Msg) error {
		if m.Headers().Get(nats.MsgSize) == "0" {
			return nil
		}
		h, ok := tally.ParseHour(key)
		if !ok || h < from || h >= to {
			return nil
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		keys = append(keys, keyRev{h, key, md.Sequence.Stream})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("stats: read %s %s: %w", s.Prefix(), id, err)
	}
	recs := make(map[int64]*Record, len(keys))
	var missing []keyRev
	mask := want // and what the stale entries had decoded, kept decoded
	for _, k := range keys {
		e, stale := c.get("r:"+k.key, k.rev, want)
		if e != nil {
			recs[k.hour] = e.rec
			continue
		}
		if stale != nil {
			mask |= stale.mask
		}
		missing = append(missing, k)
	}
	if len(missing) > 0 {
		if err := c.fetch(ctx, js, kv, s, id, from, to, mask, missing, recs); err != nil {
			return nil, nil, err
		}
	}
	if want&tally.WithAudience == 0 {
		return recs, nil, nil // no sketches decoded: nothing to merge
	}
	return recs, c.days(s, id, from, to, keys, recs), nil
}

// fetch reads and decodes the missing records with mask into recs and the
// cache: by revision when they are few, else in one pass over the id's keys.
func (c *queryCache) fetch(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, s Scope, id string, from, to int64, mask tally.DimMask, missing []keyRev, recs map[int64]*Record) error {
	c.fetched.Add(uint64(len(missing)))
	keep := func(key string, hour int64, rec *Record, as stored) {
		rec.Seq, rec.Clicks = nil, nil // not shown; the aggregator's alone
		c.put(&cacheEntry{key: "r:" + key, rev: as.rev, mask: mask, rec: rec, size: recordSize(as.size, rec)})
		recs[hour] = rec
	}
	if len(missing) > fetchOneByOne {
		wanted := make(map[string]bool, len(missing))
		keyOf := make(map[int64]string, len(missing))
		for _, k := range missing {
			wanted[k.key], keyOf[k.hour] = true, k.key
		}
		got, as, err := readRangeOf(ctx, js, s, id, from, to, mask, func(key string) bool { return wanted[key] })
		if err != nil {
			return err
		}
		for h, rec := range got {
			keep(keyOf[h], h, rec, as[h])
		}
		return nil
	}
	type fetched struct {
		k   keyRev
		rec *Record
		as  stored
	}
	out := make(chan fetched, len(missing))
	errs := make(chan error, len(missing))
	var wg sync.WaitGroup
	next := make(chan keyRev)
	for range min(8, len(missing)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				e, err := kv.GetRevision(ctx, k.key, k.rev)
				if errors.Is(err, jetstream.ErrKeyNotFound) {
					e, err = kv.Get(ctx, k.key) // overwritten since: the newer value
				}
				switch {
				case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
				case err != nil:
					errs <- fmt.Errorf("stats: read %s: %w", k.key, err)
				case len(e.Value()) > 0:
					rec, err := tally.DecodeRecordDims(e.Value(), mask)
					if err != nil {
						errs <- fmt.Errorf("stats: %s: %w", k.key, err)
						continue
					}
					out <- fetched{k, rec, stored{e.Revision(), len(e.Value())}}
				}
			}
		}()
	}
	for _, k := range missing {
		next <- k
	}
	close(next)
	wg.Wait()
	close(out)
	close(errs)
	for f := range out {
		keep(f.k.key, f.k.hour, f.rec, f.as)
	}
	return <-errs
}

// days returns the visitors of each whole day of [from, to) merged, from
// the cache while none of the day's records changed. A day is summed only
// where a query would merge its sketches.
func (c *queryCache) days(s Scope, id string, from, to int64, keys []keyRev, recs map[int64]*Record) map[int64]*daySum {
	fp := map[int64]uint64{} // a fingerprint of each day's revisions
	for _, k := range keys {
		if _, ok := recs[k.hour]; !ok {
			continue
		}
		d := tally.FloorDiv(k.hour, 24) * 24
		if d < from || d+24 > to {
			continue
		}
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:8], uint64(k.hour))
		binary.LittleEndian.PutUint64(b[8:], k.rev)
		fp[d] += xxhash.Sum64(b[:]) // order-free
	}
	out := make(map[int64]*daySum, len(fp))
	for d, f := range fp {
		key := "d:" + s.Prefix() + "." + id + "." + strconv.FormatInt(d, 10)
		if e, _ := c.get(key, f, 0); e != nil {
			out[d] = e.day
			continue
		}
		sum := &daySum{}
		for h := d; h < d+24; h++ {
			rec := recs[h]
			if rec == nil {
				continue
			}
			if rec.Audience != nil {
				sum.visitors = mergeInto(sum.visitors, &rec.Audience.Visitors)
			}
			if rec.Reach != nil {
				sum.reach = mergeInto(sum.reach, rec.Reach)
			}
		}
		c.put(&cacheEntry{key: key, rev: f, day: sum, size: daySumSize})
		out[d] = sum
	}
	return out
}

// mergeInto merges o into v, made when nil.
func mergeInto(v, o *audience.Visitors) *audience.Visitors {
	if v == nil {
		v = &audience.Visitors{}
	}
	_ = v.Merge(o) // sketches of one precision always merge
	return v
}
