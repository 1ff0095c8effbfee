package segments

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/ids"
	"github.com/adsyn/adsyn/internal/metrics"
)

// Store reads and erases visitor records.
//
// The *Record Get returns is shared with other callers and with the cache:
// it is read-only. Copy it before changing anything.
type Store interface {
	// Get returns the visitor's record, or ErrNotFound.
	Get(ctx context.Context, visitor string) (*Record, error)
	// Delete erases the visitor's record (opt-out, erasure).
	Delete(ctx context.Context, visitor string) error
}

var _ Store = (*KVStore)(nil)

// KVStore is the Store over the adsyn_segments bucket, read through a
// ristretto cache bounded by cost, with TTLs and negative entries. A watch
// on the bucket keeps the cache current: a builder's write replaces a cached
// record, a deletion or expiry drops it, within moments.
type KVStore struct {
	kv     jetstream.KeyValue
	cache  *ristretto.Cache[string, *Record]
	o      options
	stamps []atomic.Uint32 // bumped per key hash on every watched change
	stop   context.CancelFunc
	done   chan struct{}
	closed sync.Once

	loadErrors *metrics.Counter
}

// absent is the cached value of a visitor without a record.
var absent = &Record{}

const (
	stampCount   = 1 << 12
	negativeCost = 64
)

// NewKVStore opens the store on the adsyn_segments bucket and starts its
// watch. Close stops it. Options: WithCache, WithTimeout, WithLogger,
// WithMetrics.
func NewKVStore(ctx context.Context, js jetstream.JetStream, opts ...StoreOption) (*KVStore, error) {
	o, err := buildOptions(opts, StoreOption.store)
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, bus.BucketSegments)
	if err != nil {
		return nil, fmt.Errorf("segments: open %s: %w", bus.BucketSegments, err)
	}
	cache, err := ristretto.NewCache(&ristretto.Config[string, *Record]{
		NumCounters: max(o.cacheMaxCost/64, 1<<14), // ~10 per entry of a few hundred bytes
		MaxCost:     o.cacheMaxCost,
		BufferItems: 64,
		Metrics:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("segments: cache: %w", err)
	}
	wctx, stop := context.WithCancel(context.Background())
	w, err := kv.WatchAll(wctx, jetstream.UpdatesOnly())
	if err != nil {
		stop()
		cache.Close()
		return nil, fmt.Errorf("segments: watch %s: %w", bus.BucketSegments, err)
	}
	s := &KVStore{kv: kv, cache: cache, o: o, stamps: make([]atomic.Uint32, stampCount), stop: stop, done: make(chan struct{})}
	reg := o.reg
	s.loadErrors = reg.Counter("adsyn_segments_store_errors_total", "Visitor record reads or deletes that failed.")
	reg.CounterFunc("adsyn_segments_cache_hits_total", "Store.Get answered from the cache.", func() float64 { return float64(cache.Metrics.Hits()) })
	reg.CounterFunc("adsyn_segments_cache_misses_total", "Store.Get that read the bucket.", func() float64 { return float64(cache.Metrics.Misses()) })
	go s.watch(w)
	return s, nil
}

// Close stops the watch and frees the cache.
func (s *KVStore) Close() {
	s.closed.Do(func() {
		s.stop()
		<-s.done
		s.cache.Close()
	})
}

// Get returns the visitor's record or ErrNotFound. On a cache hit it
// allocates nothing and does no I/O; the record returned is shared and
// read-only.
func (s *KVStore) Get(ctx context.Context, visitor string) (*Record, error) {
	if r, ok := s.cache.Get(visitor); ok {
		if r == absent {
			return nil, ErrNotFound
		}
		return r, nil
	}
	return s.load(ctx, visitor)
}

// Peek is Get answered from the cache alone, without I/O: known is false
// when the cache does not know the visitor (a miss, counted as Get counts
// it); rec is nil for a visitor known to have no record. With Load it lets
// an edge read a record in the background instead of waiting for it.
func (s *KVStore) Peek(visitor string) (rec *Record, known bool) {
	r, ok := s.cache.Get(visitor)
	if !ok {
		return nil, false
	}
	if r == absent {
		return nil, true
	}
	return r, true
}

// Load reads the visitor's record from the bucket, not asking the cache
// first, and caches it as Get does on a miss.
func (s *KVStore) Load(ctx context.Context, visitor string) (*Record, error) {
	return s.load(ctx, visitor)
}

func (s *KVStore) stamp(visitor string) *atomic.Uint32 {
	return &s.stamps[xxhash.Sum64String(visitor)&(stampCount-1)]
}

func (s *KVStore) load(ctx context.Context, visitor string) (*Record, error) {
	if !ValidVisitor(visitor) {
		return nil, ErrInvalidVisitor
	}
	stamp := s.stamp(visitor)
	before := stamp.Load()
	ctx, cancel := withTimeout(ctx, s.o.timeout)
	defer cancel()
	rec, size := absent, 0
	e, err := s.kv.Get(ctx, visitor)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		s.loadErrors.Inc()
		return nil, fmt.Errorf("segments: get record: %w: %w", ErrUnavailable, err)
	default:
		rec, size = new(Record), len(e.Value())
		if err := DecodeRecord(e.Value(), rec); err != nil {
			s.loadErrors.Inc()
			return nil, err
		}
	}
	// A change seen by the watch while we read makes what we read stale:
	// answer it, but do not cache it.
	if stamp.Load() == before {
		s.set(visitor, rec, size)
	}
	if rec == absent {
		return nil, ErrNotFound
	}
	return rec, nil
}

func (s *KVStore) set(visitor string, rec *Record, size int) {
	if rec == absent {
		s.cache.SetWithTTL(visitor, absent, negativeCost, s.o.negativeTTL)
		return
	}
	// A decoded record takes about three times its encoded size.
	s.cache.SetWithTTL(visitor, rec, int64(3*size+128), s.o.cacheTTL)
}

// Delete erases the visitor's record in the bucket (all revisions) and in the
// cache. Other processes drop their cached copy when their watch sees it.
func (s *KVStore) Delete(ctx context.Context, visitor string) error {
	if !ValidVisitor(visitor) {
		return ErrInvalidVisitor
	}
	ctx, cancel := withTimeout(ctx, s.o.timeout)
	defer cancel()
	stamp := s.stamp(visitor)
	stamp.Add(1)
	s.cache.Del(visitor)
	err := s.kv.Purge(ctx, visitor)
	stamp.Add(1)
	s.cache.Del(visitor) // again: a read that raced the purge may have cached the record
	if err != nil {
		s.loadErrors.Inc()
		return fmt.Errorf("segments: delete record: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// Export returns the visitor's record as stored, decoded generically so a
// data subject's export shows whatever it holds (the bytes, when they do
// not decode); nil when there is none. With Delete it is what profiles
// need of the record a user linked (profiles.Visitors).
func (s *KVStore) Export(ctx context.Context, visitor string) (any, error) {
	if !ValidVisitor(visitor) {
		return nil, ErrInvalidVisitor
	}
	ctx, cancel := withTimeout(ctx, s.o.timeout)
	defer cancel()
	e, err := s.kv.Get(ctx, visitor)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		return nil, nil
	case err != nil:
		s.loadErrors.Inc()
		return nil, fmt.Errorf("segments: export record: %w: %w", ErrUnavailable, err)
	}
	var rec any
	if msgpack.Unmarshal(e.Value(), &rec) != nil {
		return e.Value(), nil
	}
	return rec, nil
}

// Cached reports whether the cache holds an entry for visitor, positive or
// negative; for tests and the operator's view.
func (s *KVStore) Cached(visitor string) (rec *Record, ok bool) {
	s.cache.Wait()
	r, ok := s.cache.Get(visitor)
	if r == absent {
		return nil, ok
	}
	return r, ok
}

// CacheStats returns the hits and misses of Get so far.
func (s *KVStore) CacheStats() (hits, misses uint64) {
	return s.cache.Metrics.Hits(), s.cache.Metrics.Misses()
}

func (s *KVStore) watch(w jetstream.KeyWatcher) {
	defer close(s.done)
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e == nil {
			continue
		}
		key := e.Key()
		s.stamp(key).Add(1)
		if e.Operation() != jetstream.KeyValuePut {
			s.cache.Del(key)
			continue
		}
		// Without WithWarmCache only what is cached is refreshed. With it,
		// every record a builder writes lands in the cache (subject to its
		// admission policy), so an edge already holds the record of a visitor
		// whose page view it has just seen.
		if !s.o.warm {
			if _, ok := s.cache.GetTTL(key); !ok {
				continue
			}
		}
		rec := new(Record)
		if err := DecodeRecord(e.Value(), rec); err != nil {
			s.o.log.Warn("segments: undecodable record in watch", "err", err)
			s.cache.Del(key)
			continue
		}
		s.set(key, rec, len(e.Value()))
	}
	s.o.log.Debug("segments: store watch stopped")
}

// withTimeout gives ctx a deadline when it has none.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// ValidVisitor reports whether v can key a record: the one visitor-id
// rule, ids.ValidVisitor.
func ValidVisitor(v string) bool { return ids.ValidVisitor(v) }
