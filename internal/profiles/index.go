package profiles

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Query is a public profile search. Empty terms match everything.
type Query struct {
	Name       string // substring of the name, case-insensitive
	City       string // the city, case-insensitive
	Competence string // one of the competences, case-insensitive
	Limit      int    // 1-100; 0 means 20
	Offset     int
}

type entry struct {
	pub        Public
	name, city string
	competence []string
}

// index holds the public view of every profile that shows something. It
// never sees a contact field: it is built from Reader.Decode and SiteView.
type index struct {
	mu   sync.RWMutex
	byID map[string]entry
}

func startIndex(ctx context.Context, kv jetstream.KeyValue, r *Reader, log *slog.Logger) (*index, error) {
	ix := &index{byID: map[string]entry{}}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("profiles: watch %s: %w", kv.Bucket(), err)
	}
	ready := make(chan struct{})
	go func() {
		defer w.Stop()
		for e := range w.Updates() {
			if e == nil {
				close(ready)
				continue
			}
			ix.apply(ctx, e, r, log)
		}
	}()
	select {
	case <-ready:
		return ix, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		return nil, errors.New("profiles: search index did not load within 30s")
	}
}

func (ix *index) apply(ctx context.Context, e jetstream.KeyValueEntry, r *Reader, log *slog.Logger) {
	var p *Profile
	var err error
	if e.Operation() == jetstream.KeyValuePut {
		p, err = r.Decode(ctx, e.Value()) // outside the lock: it may read the data key
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(ix.byID, e.Key())
		return
	}
	if errors.Is(err, ErrShredded) {
		delete(ix.byID, e.Key()) // erased while the watch caught up
		return
	}
	if err != nil {
		log.Error("profiles: index: undecodable record", "user", e.Key(), "err", err)
		delete(ix.byID, e.Key())
		return
	}
	pub := SiteView(p)
	if pub.Empty() {
		delete(ix.byID, e.Key())
		return
	}
	en := entry{pub: pub, name: strings.ToLower(pub.Name), city: strings.ToLower(pub.City)}
	for _, c := range pub.Competence {
		en.competence = append(en.competence, strings.ToLower(c))
	}
	ix.byID[e.Key()] = en
}

func (ix *index) len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.byID)
}

func (ix *index) search(q Query) []Public {
	name, city, comp := strings.ToLower(q.Name), strings.ToLower(q.City), strings.ToLower(q.Competence)
	if q.Limit <= 0 || q.Limit > 100 {
		q.Limit = 20
	}
	ix.mu.RLock()
	var hits []entry
	for _, e := range ix.byID {
		if name != "" && !strings.Contains(e.name, name) {
			continue
		}
		if city != "" && e.city != city {
			continue
		}
		if comp != "" && !slices.Contains(e.competence, comp) {
			continue
		}
		hits = append(hits, e)
	}
	ix.mu.RUnlock()
	slices.SortFunc(hits, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.pub.ID, b.pub.ID))
	})
	out := []Public{}
	for i := q.Offset; i < len(hits) && len(out) < q.Limit; i++ {
		out = append(out, hits[i].pub)
	}
	return out
}
