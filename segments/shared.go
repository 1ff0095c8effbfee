package segments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// TaxonomyKey is where the taxonomy in force lives in the adsyn_config bucket.
const TaxonomyKey = "taxonomy"

// Shared keeps a Live taxonomy in step with the one stored in NATS, so an
// operator's change through the API reaches every process (builders, edges,
// API) and survives restarts. The stored file passes the same guard as any
// other: a refused one is logged and the taxonomy in force stays.
type Shared struct {
	kv   jetstream.KeyValue
	live *taxonomy.Live
	log  *slog.Logger
	done chan struct{}
}

// ShareTaxonomy loads the stored taxonomy into live (when there is one) and
// follows changes until ctx ends.
func ShareTaxonomy(ctx context.Context, js jetstream.JetStream, live *taxonomy.Live, log *slog.Logger) (*Shared, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := js.KeyValue(ctx, bus.BucketConfig)
	if err != nil {
		return nil, fmt.Errorf("segments: open %s: %w", bus.BucketConfig, err)
	}
	w, err := kv.Watch(ctx, TaxonomyKey)
	if err != nil {
		return nil, fmt.Errorf("segments: watch taxonomy: %w", err)
	}
	s := &Shared{kv: kv, live: live, log: log, done: make(chan struct{})}
	ready := make(chan struct{})
	go s.follow(w, ready)
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		return nil, errors.New("segments: stored taxonomy did not load within 10s")
	}
	return s, nil
}

func (s *Shared) follow(w jetstream.KeyWatcher, ready chan struct{}) {
	defer close(s.done)
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e == nil {
			close(ready)
			continue
		}
		if e.Operation() != jetstream.KeyValuePut {
			s.live.Store(taxonomy.Default())
			s.log.Info("segments: stored taxonomy removed; the default is in force")
			continue
		}
		var f taxonomy.File
		if err := json.Unmarshal(e.Value(), &f); err != nil {
			s.log.Error("segments: stored taxonomy is not valid JSON; keeping the one in force", "err", err)
			continue
		}
		t, err := taxonomy.New(f)
		if err != nil {
			s.log.Error("segments: stored taxonomy refused; keeping the one in force", "err", err)
			continue
		}
		s.live.Store(t)
		s.log.Info("segments: taxonomy in force", "version", t.Version(), "segments", t.Len(), "revision", e.Revision())
	}
}

// Put validates f and stores it; every process then puts it in force. This
// process does at once.
func (s *Shared) Put(ctx context.Context, f taxonomy.File) (*taxonomy.Taxonomy, error) {
	t, err := taxonomy.New(f)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	if _, err := s.kv.Put(ctx, TaxonomyKey, b); err != nil {
		return nil, fmt.Errorf("segments: store taxonomy: %w: %w", ErrUnavailable, err)
	}
	s.live.Store(t)
	return t, nil
}
