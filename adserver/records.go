package adserver

import (
	"context"
	"errors"
	"time"

	"github.com/adsyn/adsyn/segments"
)

// peekRecords is a Records store that can answer from its cache alone and
// read the bucket on its own (segments.KVStore): /ad then waits for a cold
// read only up to WithRecordWait.
type peekRecords interface {
	Peek(visitor string) (rec *segments.Record, known bool)
	Load(ctx context.Context, visitor string) (*segments.Record, error)
}

// maxRecordReads bounds the cold reads in flight: past it a request is
// decided without the record at once (and counted), rather than queueing
// more reads behind a slow bucket.
const maxRecordReads = 256

// recordRead is a cold read's outcome.
type recordRead struct {
	rec *segments.Record
	err error
}

// record returns the visitor's record; known is false when it could not be
// read within the edge's wait (the request is then decided failing closed).
// A nil record with known true is a visitor without one, or a failed read
// (counted), as before.
func (e *Edge) record(visitor string) (rec *segments.Record, known bool) {
	store, ok := e.cfg.segments.(peekRecords)
	if !ok || e.cfg.recordWait < 0 {
		rec, err := e.cfg.segments.Get(e.base, visitor)
		return e.readDone(rec, err), true
	}
	if rec, known := store.Peek(visitor); known {
		return rec, true
	}
	select {
	case e.reads <- struct{}{}:
	default:
		e.recordsShed.Inc()
		return nil, false
	}
	done := make(chan recordRead, 1)
	go func() {
		defer func() { <-e.reads }()
		rec, err := store.Load(e.base, visitor) // it caches what it read
		done <- recordRead{rec, err}
	}()
	t := time.NewTimer(e.cfg.recordWait)
	defer t.Stop()
	select {
	case r := <-done:
		return e.readDone(r.rec, r.err), true
	case <-t.C:
		e.recordsLate.Inc()
		return nil, false
	}
}

// readDone counts a failed read; an unknown visitor is no failure.
func (e *Edge) readDone(rec *segments.Record, err error) *segments.Record {
	if err != nil {
		if !errors.Is(err, segments.ErrNotFound) {
			e.storeErrs.Inc()
		}
		return nil
	}
	return rec
}
