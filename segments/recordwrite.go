package segments

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// pendingWrite is a record write awaiting its acknowledgement.
type pendingWrite struct {
	vi      int32
	h       *held
	applied int
	fut     jetstream.PubAckFuture
}

// write applies each visit to the record held for it (or an empty one,
// created only if none exists) and writes them all, at most b.inflight at a
// time; it returns the visits that met a conflict. Failures mark their
// messages for redelivery.
func (w *worker) write(todo []int32, tax *taxonomy.Taxonomy) (conflicts []int32) {
	pol := &w.b.o.policy
	pending := make([]pendingWrite, 0, min(len(todo), w.b.inflight))
	msgs := make([]nats.Msg, len(todo))
	head := 0
	timeout := time.NewTimer(ackTimeout)
	defer timeout.Stop()
	w.expired = false
	for _, vi := range todo {
		v := &w.visits[vi]
		h, ok := w.records[v.visitor]
		if !ok {
			// A copy: the event's strings share one allocation, the
			// whole event, which a cached record would keep alive.
			h = &held{rec: Record{Visitor: strings.Clone(v.visitor)}}
		}
		// The held record changes in place; it is dropped if the write fails.
		n := pol.apply(&h.rec, v.changes, tax)
		if n == 0 {
			w.dups += uint64(len(v.changes))
			continue
		}
		start := len(w.arena)
		w.arena = h.rec.AppendMsgpack(w.arena)
		m := &msgs[len(pending)]
		*m = nats.Msg{
			Subject: w.b.subjects + v.visitor,
			Data:    w.arena[start:len(w.arena):len(w.arena)],
			Header:  nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(h.rev, 10)}},
		}
		if w.b.writeIDs {
			m.Header[jetstream.MsgIDHeader] = []string{w.b.writeID + strconv.FormatUint(w.b.writes.Add(1), 36)}
		}
		if w.b.ttl != nil {
			m.Header[jetstream.MsgTTLHeader] = w.b.ttl
		}
		if len(pending)-head >= w.b.inflight {
			if w.settle(&pending[head], timeout.C) {
				conflicts = append(conflicts, pending[head].vi)
			}
			head++
		}
		fut, err := w.b.js.PublishMsgAsync(m)
		if err != nil {
			w.writeFailed(vi, err)
			continue
		}
		pending = append(pending, pendingWrite{vi: vi, h: h, applied: n, fut: fut})
	}
	for i := head; i < len(pending); i++ {
		if w.settle(&pending[i], timeout.C) {
			conflicts = append(conflicts, pending[i].vi)
		}
	}
	return conflicts
}

// ackTimeout bounds the wait for the acknowledgements of one batch. Shorter
// than the bucket's dedupe window (bus.SegmentsDedupeWindow), so that a
// write sent again after it is usually still known by its id.
const ackTimeout = 10 * time.Second

var errAckTimeout = errors.New("segments: no acknowledgement for a record write")

// settle waits for a write's acknowledgement; it reports a conflict.
func (w *worker) settle(p *pendingWrite, timeout <-chan time.Time) (conflict bool) {
	v := &w.visits[p.vi]
	var (
		ack *jetstream.PubAck
		err error
	)
	if w.expired {
		select {
		case ack = <-p.fut.Ok():
		case err = <-p.fut.Err():
		default:
			w.abandoned, err = true, errAckTimeout
		}
	} else {
		select {
		case ack = <-p.fut.Ok():
		case err = <-p.fut.Err():
		case <-timeout:
			w.expired, w.abandoned, err = true, true, errAckTimeout
		}
	}
	if err != nil && !bus.IsWrongLastSequence(err) {
		// The write may be stored with its answer lost. Sent again, with
		// the same expected revision (and message id, if any), it is stored
		// at most once (redelivery.go says how); a redelivery instead, later, would
		// apply the events twice once the record's window of applied
		// messages has moved on.
		ack, err = w.resend(p.fut.Msg())
	}
	if err != nil {
		delete(w.records, v.visitor)
		if bus.IsWrongLastSequence(err) {
			w.b.m.conflicts.Inc()
			return true
		}
		w.writeFailed(p.vi, err)
		return false
	}
	p.h.rev = ack.Sequence
	w.keep(p.h)
	w.writes++
	w.applied += uint64(p.applied)
	w.dups += uint64(len(v.changes) - p.applied)
	return false
}

func (w *worker) writeFailed(vi int32, err error) {
	delete(w.records, w.visits[vi].visitor)
	w.b.m.writeErrors.Inc()
	w.b.o.log.Warn("segments: record write failed; its messages will be redelivered", "partition", w.part, "err", err)
	w.fail(vi)
}

// reload reads the current record of each visit, a few at a time, and holds
// it; it returns the visits to write again.
func (w *worker) reload(todo []int32) []int32 {
	const readers = 16
	type result struct {
		vi  int32
		h   *held
		err error
	}
	results := make([]result, len(todo))
	var wg sync.WaitGroup
	next := make(chan int, len(todo))
	for i := range todo {
		next <- i
	}
	close(next)
	for range min(readers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				vi := todo[i]
				h, err := w.readRetry(w.visits[vi].visitor)
				results[i] = result{vi: vi, h: h, err: err}
			}
		}()
	}
	wg.Wait()
	out := todo[:0]
	for _, r := range results {
		if r.err != nil {
			w.b.m.readErrors.Inc()
			w.b.o.log.Warn("segments: record read failed; its messages will be redelivered", "partition", w.part, "err", r.err)
			w.fail(r.vi)
			continue
		}
		w.keep(r.h)
		out = append(out, r.vi)
	}
	return out
}

// keep caches h as its visitor's record, keyed by the record's own copy of
// the id (write and read make it): an event's strings share one allocation,
// the whole event, which the cache would otherwise keep alive.
func (w *worker) keep(h *held) {
	w.records[h.rec.Visitor] = h
}

// read returns the stored record of visitor and its revision. An erased or
// expired record reads as empty, with Since set so that events captured
// before the erasure are not applied.
func (w *worker) read(visitor string) (*held, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	visitor = strings.Clone(visitor) // kept in the record; see keep
	m, err := w.kvs.GetLastMsgForSubject(ctx, w.b.subjects+visitor)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return &held{rec: Record{Visitor: visitor}}, nil
	}
	if err != nil {
		return nil, err
	}
	h := &held{rev: m.Sequence}
	if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" || len(m.Data) == 0 {
		h.rec = Record{Visitor: visitor, Since: m.Time.UnixMilli()}
		return h, nil
	}
	if err := DecodeRecord(m.Data, &h.rec); err != nil {
		// Overwrite what cannot be read rather than stall the partition.
		w.b.o.log.Error("segments: stored record does not decode; starting it again", "partition", w.part, "err", err)
		h.rec = Record{Visitor: visitor}
	}
	h.rec.Visitor = visitor
	return h, nil
}
