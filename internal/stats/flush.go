package stats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/stats/tally"
)

// cached is a record as last written or read by this aggregator.
type cached struct {
	rec  *Record
	rev  uint64 // 0: no such key
	used uint64 // flush number
}

// Records untouched for this many flushes leave the cache.
const cacheFlushes = 600

// flushLoop writes the buffered counters. The pause between flushes is
// twice the last flush's duration, within [flushEvery/8, flushEvery]: short
// when writing is cheap, so counts show up fast, and long under load, so
// each record is written once for more events. When every owned partition
// is caught up the pause is cut to its floor: the backlog is in the batch,
// and waiting longer only delays the counts.
func (a *Aggregator) flushLoop(ctx context.Context) {
	floor := a.cfg.flushEvery / 8
	t := time.NewTimer(floor)
	defer t.Stop()
	lastEnd := time.Now()
	due := lastEnd.Add(floor)
	for {
		select {
		case <-ctx.Done():
			a.flushed <- ctx.Err()
			return
		case sctx := <-a.final:
			a.flushed <- a.flush(sctx)
			return
		case <-t.C:
		case <-a.kick:
		case <-a.idle:
			if at := lastEnd.Add(floor); time.Now().Before(at) {
				if at.Before(due) {
					t.Reset(time.Until(at))
					due = at
				}
				continue
			}
		}
		start := time.Now()
		if err := a.flush(ctx); err != nil && ctx.Err() == nil {
			a.cfg.log.Error("stats flush failed", "err", err)
		}
		lastEnd = time.Now()
		pause := min(a.cfg.flushEvery, max(floor, 2*lastEnd.Sub(start)))
		t.Reset(pause)
		due = lastEnd.Add(pause)
	}
}

// swap takes the current batch and opens a new one.
func (a *Aggregator) swap() *batch {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.cur
	a.flushN++
	b.n = a.flushN
	a.cur = a.newBatch()
	close(a.room)
	a.room = make(chan struct{})
	return b
}

func (b *batch) empty() bool {
	for p := range b.msgs {
		if len(b.msgs[p]) > 0 || len(b.dups[p]) > 0 {
			return false
		}
	}
	return true
}

// flush writes a batch, then its checkpoints, then acknowledges its
// messages. It retries until it succeeds or ctx ends; then nothing is
// acknowledged and JetStream redelivers.
func (a *Aggregator) flush(ctx context.Context) error {
	b := a.swap()
	a.buffered.Add(-int64(b.events))
	if b.empty() {
		return nil
	}
	start := time.Now()
	jobs := make([]*job, 0, len(b.t.Recs))
	n := b.t.Names()
	for _, d := range b.t.Recs {
		jobs = append(jobs, &job{key: d.Key, name: d.Key.String(), d: d, n: n})
	}
	fails := 0
	retry := func(what string, err error) error {
		fails++
		a.m.flushErrors.Inc()
		if ctx.Err() != nil {
			return fmt.Errorf("stats: flush %s: %w", what, err)
		}
		a.cfg.log.Warn("stats flush retry", "stage", what, "attempt", fails, "err", err)
		sleep(ctx, backoff(fails))
		return nil
	}
	for len(jobs) > 0 {
		var err error
		if jobs, err = a.writeRound(ctx, b, jobs); err != nil {
			if err := retry("records", err); err != nil {
				return err
			}
		}
	}
	for _, p := range a.parts {
		for b.maxSeq[p.n] > 0 {
			err := a.advance(ctx, p, b.maxSeq[p.n])
			if err == nil {
				break
			}
			if err := retry("checkpoint", err); err != nil {
				return err
			}
		}
	}
	written := time.Since(start)
	a.ack(b)
	a.cfg.log.Debug("stats flush", "events", b.events, "records", len(b.t.Recs), "write", written, "total", time.Since(start))
	a.m.flushTime.Observe(time.Since(start).Seconds())
	a.m.flushes.Inc()
	a.m.events.Add(uint64(b.events))
	a.applied.Add(uint64(b.events))
	a.evict()
	return nil
}

// ack acknowledges a written batch and forgets its messages.
func (a *Aggregator) ack(b *batch) {
	failed := 0
	var last error
	for p := range b.msgs {
		for _, h := range b.msgs[p] {
			if err := a.ackFn(h.m); err != nil {
				failed, last = failed+1, err
			}
		}
		for _, h := range b.dups[p] {
			if err := a.ackFn(h.m); err != nil {
				failed, last = failed+1, err
			}
		}
	}
	if failed > 0 {
		// Applied already: a redelivery will find them in the records.
		a.cfg.log.Warn("stats acknowledgements failed", "messages", failed, "err", last)
	}
	a.mu.Lock()
	for _, d := range b.t.Recs {
		d.Reset()
		a.spare = append(a.spare, d)
	}
	for p, part := range a.parts {
		for _, h := range b.msgs[p] {
			part.drop(h.seq)
		}
		for _, h := range b.dups[p] {
			part.drop(h.seq)
		}
	}
	a.mu.Unlock()
}

type job struct {
	key  tally.RecKey
	name string
	d    *tally.Delta
	n    *tally.Names // of d's values
}

type outcome uint8

const (
	written outcome = iota
	conflict
	partial
	failed
)

// maxUpdatesInFlight bounds the record updates a flush has sent and not
// yet seen acknowledged.
const maxUpdatesInFlight = 256

// writeRound writes each job's record once, in parallel, and returns the
// jobs to do again: lost compare-and-sets, failures, and records part of
// whose contribution was already applied, recomputed here from the batch.
// Updates of existing records go out asynchronously, up to
// maxUpdatesInFlight at once, each a compare-and-set on the record's
// revision: the writers merge and encode while earlier updates are stored.
func (a *Aggregator) writeRound(ctx context.Context, b *batch, jobs []*job) ([]*job, error) {
	var (
		mu       sync.Mutex
		left     []*job
		floors   tally.Floor
		firstErr error
		wg       sync.WaitGroup
		next     = make(chan *job)
		sent     = make(chan sentUpdate, maxUpdatesInFlight)
		acked    = make(chan struct{})
	)
	settle := func(j *job, out outcome, fl []uint64, err error) {
		if out == written {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		left = append(left, j)
		switch out {
		case partial:
			if floors == nil {
				floors = tally.Floor{}
			}
			floors[j.key] = fl
		case failed:
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	go func() {
		defer close(acked)
		for u := range sent {
			out, err := a.updated(ctx, u)
			settle(u.j, out, nil, err)
		}
	}()
	for range min(a.cfg.writers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 4096)
			f := tally.NewFold()
			for j := range next {
				out, fl, err := a.writeOne(ctx, b, j, &buf, f, sent)
				settle(j, out, fl, err)
			}
		}()
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		next <- j
	}
	close(next)
	wg.Wait()
	close(sent)
	<-acked
	if err := ctx.Err(); err != nil {
		return jobs, err
	}
	if len(floors) > 0 {
		a.recomputeDeltas(b, left, floors)
	}
	return left, firstErr
}

// sentUpdate is a record update sent and not yet acknowledged.
type sentUpdate struct {
	j   *job
	c   *cached
	ack jetstream.PubAckFuture
}

// updated waits for u's acknowledgement and keeps the new revision.
func (a *Aggregator) updated(ctx context.Context, u sentUpdate) (outcome, error) {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case pa := <-u.ack.Ok():
		u.c.rev = pa.Sequence
		a.m.writes.Inc()
		return written, nil
	case err := <-u.ack.Err():
		a.uncache(u.j.key) // u.c.rec holds an unwritten merge
		if errors.Is(err, jetstream.ErrKeyExists) || bus.IsWrongLastSequence(err) {
			a.m.conflicts.Inc()
			return conflict, nil
		}
		return failed, fmt.Errorf("stats: write %s: %w", u.j.name, err)
	case <-t.C:
		a.uncache(u.j.key)
		return failed, fmt.Errorf("stats: write %s: no acknowledgement in 10s", u.j.name)
	case <-ctx.Done():
		a.uncache(u.j.key)
		return failed, ctx.Err()
	}
}

// writeOne merges j into its record with compare-and-set. An update of an
// existing record is sent on sent and settled there; a new record is
// created at once (a create must tell a deleted key from a live one).
func (a *Aggregator) writeOne(ctx context.Context, b *batch, j *job, buf *[]byte, f *tally.Fold, sent chan<- sentUpdate) (outcome, []uint64, error) {
	if j.d.Empty() {
		return written, nil, nil // everything was already applied
	}
	c, err := a.load(ctx, j, b.n)
	if err != nil {
		return failed, nil, err
	}
	for p, r := range j.d.Seqs {
		if r.Max > 0 && c.rec.Applied(p) >= r.Min {
			return partial, append([]uint64(nil), c.rec.Seq...), nil
		}
	}
	if err := c.rec.Merge(j.key.Scope, j.d, j.n, a.cfg.maxDimValues, f); err != nil {
		a.uncache(j.key) // c.rec holds a part of the merge
		return failed, nil, fmt.Errorf("stats: merge %s: %w", j.name, err)
	}
	for p, r := range j.d.Seqs {
		if r.Max > 0 {
			c.rec.SetApplied(p, b.maxSeq[p])
		}
	}
	*buf = c.rec.AppendMsgpack((*buf)[:0])
	if c.rev != 0 {
		m := nats.NewMsg("$KV." + bus.BucketStats + "." + j.name)
		m.Data = bytes.Clone(*buf) // the buffer is reused before the message is written
		ack, err := a.js.PublishMsgAsync(m, jetstream.WithExpectLastSequencePerSubject(c.rev))
		if err != nil {
			a.uncache(j.key)
			return failed, nil, fmt.Errorf("stats: write %s: %w", j.name, err)
		}
		sent <- sentUpdate{j: j, c: c, ack: ack}
		return written, nil, nil // settled by the acknowledgement
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rev, err := a.kv.Create(wctx, j.name, *buf)
	if err != nil {
		a.uncache(j.key) // c.rec holds an unwritten merge
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			a.m.conflicts.Inc()
			return conflict, nil, nil
		}
		return failed, nil, fmt.Errorf("stats: write %s: %w", j.name, err)
	}
	c.rev = rev
	a.m.writes.Inc()
	return written, nil, nil
}

// load returns j's record from the cache, or reads it.
func (a *Aggregator) load(ctx context.Context, j *job, flushN uint64) (*cached, error) {
	a.cacheMu.Lock()
	c := a.cache[j.key]
	a.cacheMu.Unlock()
	if c != nil {
		c.used = flushN
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c = &cached{rec: &Record{}, used: flushN}
	e, err := a.kv.Get(ctx, j.name)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return nil, fmt.Errorf("stats: read %s: %w", j.name, err)
	default:
		rec, err := DecodeRecord(e.Value())
		if err != nil {
			// Never overwrite what we cannot read: the flush stalls and says so.
			return nil, fmt.Errorf("stats: %s: %w", j.name, err)
		}
		c.rec, c.rev = rec, e.Revision()
	}
	a.cacheMu.Lock()
	a.cache[j.key] = c
	a.cacheMu.Unlock()
	return c, nil
}

func (a *Aggregator) uncache(k tally.RecKey) {
	a.cacheMu.Lock()
	delete(a.cache, k)
	a.cacheMu.Unlock()
}

func (a *Aggregator) evict() {
	a.cacheMu.Lock()
	defer a.cacheMu.Unlock()
	if a.flushN%64 != 0 {
		return
	}
	for k, c := range a.cache {
		if c.used+cacheFlushes < a.flushN {
			delete(a.cache, k)
		}
	}
}

// recomputeDeltas rebuilds the deltas of the records in floors from the
// batch's messages, counting only messages above each record's sequences.
func (a *Aggregator) recomputeDeltas(b *batch, jobs []*job, floors tally.Floor) {
	t := tally.New(a.cfg.partitions, a.cfg.cpm)
	for p, msgs := range b.msgs {
		var facts []tally.Fact
		for _, h := range msgs {
			facts, _ = decodeFacts(h, facts[:0])
			for i := range facts {
				t.Add(&facts[i], p, h.seq, floors)
			}
		}
	}
	n := t.Names()
	for _, j := range jobs {
		if _, ok := floors[j.key]; !ok {
			continue
		}
		a.m.recompute.Inc()
		j.n = n
		if d := t.Get(j.key); d != nil {
			j.d = d
		} else {
			j.d = &tally.Delta{Seqs: make([]tally.SeqRange, a.cfg.partitions)}
		}
	}
}

// Checkpoints: agg.<consumer>.p<N> holds a sequence S such that every
// message of partition N up to S is applied to every record it counts in.
// Written after a batch's records and before its acknowledgements.

func (a *Aggregator) checkpointKey(p int) string {
	return "agg." + a.cfg.consumer + ".p" + strconv.Itoa(p)
}

// checkpoint reads partition p's checkpoint and its revision through the
// stream leader. The bucket allows direct gets, which any replica answers,
// one that lags included: settle counts our held messages above the
// checkpoint against the consumer's pending count, so an old checkpoint
// counts messages acknowledged elsewhere as pending and can hide one that
// still is. Checkpoints are read seldom, records (compare-and-set) stay on
// direct gets.
func (a *Aggregator) checkpoint(ctx context.Context, p int) (uint64, uint64, error) {
	js, err := a.js.Conn().JetStream(a.legacyAPI()...)
	if err != nil {
		return 0, 0, fmt.Errorf("stats: read checkpoint %d: %w", p, err)
	}
	m, err := js.GetLastMsg(bus.KVStream(bus.BucketStats), "$KV."+bus.BucketStats+"."+a.checkpointKey(p), nats.Context(ctx))
	if errors.Is(err, nats.ErrMsgNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("stats: read checkpoint %d: %w", p, err)
	}
	if op := m.Header.Get("KV-Operation"); op != "" {
		return 0, 0, nil // deleted or purged
	}
	v, err := strconv.ParseUint(string(m.Data), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("stats: checkpoint %d: %w", p, err)
	}
	return v, m.Sequence, nil
}

// legacyAPI returns the options that point nats.go's JetStreamContext, whose
// message gets go to the stream leader unless told otherwise, at a.js's API.
func (a *Aggregator) legacyAPI() []nats.JSOpt {
	switch o := a.js.Options(); {
	case o.Domain != "":
		return []nats.JSOpt{nats.Domain(o.Domain)}
	case o.APIPrefix != "":
		return []nats.JSOpt{nats.APIPrefix(o.APIPrefix)}
	}
	return nil
}

// advance raises p's checkpoint to at least seq.
func (a *Aggregator) advance(ctx context.Context, p *partition, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if !p.ckptLoaded {
			v, rev, err := a.checkpoint(ctx, p.n)
			if err != nil {
				return err
			}
			p.ckpt, p.ckptRev, p.ckptLoaded = v, rev, true
		}
		if p.ckpt >= seq {
			return nil
		}
		val := strconv.AppendUint(nil, seq, 10)
		var (
			rev uint64
			err error
		)
		if p.ckptRev == 0 {
			rev, err = a.kv.Create(ctx, a.checkpointKey(p.n), val)
		} else {
			rev, err = a.kv.Update(ctx, a.checkpointKey(p.n), val, p.ckptRev)
		}
		if err != nil {
			p.ckptLoaded = false
			if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue
			}
			return fmt.Errorf("stats: write checkpoint %d: %w", p.n, err)
		}
		p.ckpt, p.ckptRev = seq, rev
		return nil
	}
}
