package segments

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// worker applies one partition's events: it coalesces a batch per visitor,
// writes the changed records (recordwrite.go), then acknowledges.
type worker struct {
	b        *Builder
	part     int
	kvs      jetstream.Stream
	in       chan arrival
	stopping chan struct{}
	records  map[string]*held // what this worker last wrote or read, by visitor
	acking   sync.WaitGroup   // acknowledgements of the last batch awaiting confirmation

	// The batch being coalesced.
	msgs      []batchMsg
	index     map[string]int32 // visitor → visits
	seqs      map[uint64]int32 // stream sequence → index in msgs
	visits    []visit
	contribs  []taxonomy.Contribution
	staged    []staged
	events    int
	arena     []byte
	expired   bool // the acknowledgements of a write round are over time
	abandoned bool // some writes of the batch were given up unacknowledged

	// Counts of the batch, added to the metrics once per flush.
	writes, applied, dups uint64
}

// arrival is a message as the consumer handed it over, and when.
type arrival struct {
	m  jetstream.Msg
	at time.Time
}

type held struct {
	rec Record
	rev uint64
}

type batchMsg struct {
	m      jetstream.Msg
	again  []jetstream.Msg // its redeliveries that reached the same batch
	failed bool
}

type visit struct {
	visitor string
	changes []change
	msgs    []int32 // indexes in the batch's msgs
}

type staged struct {
	visitor string
	c       change
}

func newWorker(b *Builder, part int, kvs jetstream.Stream) *worker {
	return &worker{
		b: b, part: part, kvs: kvs,
		in:       make(chan arrival, 2*b.o.pull),
		stopping: make(chan struct{}),
		records:  map[string]*held{},
		index:    map[string]int32{},
		seqs:     map[uint64]int32{},
	}
}

// receive is the consumer's callback.
func (w *worker) receive(m jetstream.Msg) {
	select {
	case w.in <- arrival{m: m, at: time.Now()}:
	case <-w.stopping:
		_ = m.Nak() // redelivered to whoever runs next
	}
}

func (w *worker) run() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case a := <-w.in:
			// The window runs from the batch's first arrival: messages that
			// queued up during the last flush have had theirs, and are
			// written now rather than a window later.
			first := len(w.msgs) == 0
			w.add(a.m)
			switch wait := w.b.o.window - time.Since(a.at); {
			case w.events >= w.b.o.flushEvents:
				timer.Stop()
				w.flush()
			case first && wait <= 0:
				w.fill()
				w.flush()
			case first:
				timer.Reset(wait)
			}
		case <-timer.C:
			w.fill()
			w.flush()
		case <-w.stopping:
			timer.Stop()
		drain:
			for {
				select {
				case a := <-w.in:
					w.add(a.m)
				default:
					break drain
				}
			}
			w.flush()
			w.acking.Wait()
			return
		}
	}
}

// fill adds what is already waiting: behind a backlog the batch grows to
// flushEvents, and coalesces more.
func (w *worker) fill() {
	for w.events < w.b.o.flushEvents {
		select {
		case a := <-w.in:
			w.add(a.m)
		default:
			return
		}
	}
}

// add decodes a message into the batch; an undecodable one is terminated.
func (w *worker) add(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		w.b.o.log.Warn("segments: message without metadata", "partition", w.part, "err", err)
		_ = m.Term()
		w.b.m.terminated.Inc()
		return
	}
	seq := md.Sequence.Stream
	if mi, ok := w.seqs[seq]; ok {
		// Redelivered while its first delivery waits in this batch (a flush
		// held up past the ack wait): settled with it, applied once. A
		// record's applied messages cannot tell the two apart within one
		// write.
		w.msgs[mi].again = append(w.msgs[mi].again, m)
		return
	}
	tax := w.b.live.Load()
	now := time.Now().UnixMilli()
	mark := len(w.contribs)
	w.staged = w.staged[:0]
	var noConsent, noVisitor, newVisitor, invalid uint64
	sensitive := map[taxonomy.Category]uint64(nil)
	_, err = event.DecodeBatch(m.Data(), func(e *event.Event) error {
		switch {
		case e.Visitor == "":
			noVisitor++
			return nil
		case e.NewVisitor:
			// Data minimisation: a record only once the cookie came back.
			newVisitor++
			return nil
		case !e.Consent.Allow(consent.BuildProfile):
			noConsent++
			return nil
		case !ValidVisitor(e.Visitor):
			invalid++
			return nil
		}
		ts := e.TS
		if ts <= 0 || ts > now+5*60*1000 {
			ts = now
		}
		start := len(w.contribs)
		var cat string
		w.contribs, cat = tax.Match(w.contribs, e)
		c := change{seq: seq, ts: ts, lang: taxonomy.PrimaryLang(e.Lang), contribs: w.contribs[start:len(w.contribs):len(w.contribs)], sensitive: cat != ""}
		if cat != "" {
			if sensitive == nil {
				sensitive = map[taxonomy.Category]uint64{}
			}
			sensitive[taxonomy.Category(cat)]++
		}
		if e.Kind == event.KindImpression && e.Campaign != "" && len(e.Campaign) <= 128 {
			c.campaign = e.Campaign
		}
		w.staged = append(w.staged, staged{visitor: e.Visitor, c: c})
		return nil
	})
	if err != nil {
		w.contribs = w.contribs[:mark]
		w.b.o.log.Warn("segments: undecodable event message", "partition", w.part, "seq", seq, "err", err)
		_ = m.Term()
		w.b.m.terminated.Inc()
		return
	}
	w.b.m.skippedConsent.Add(noConsent)
	w.b.m.skippedVisitor.Add(noVisitor)
	w.b.m.skippedNew.Add(newVisitor)
	w.b.m.skippedInvalid.Add(invalid)
	for c, n := range sensitive {
		if ctr := w.b.m.sensitive[c]; ctr != nil {
			ctr.Add(n)
		}
	}
	mi := int32(len(w.msgs))
	w.seqs[seq] = mi
	w.msgs = append(w.msgs, batchMsg{m: m})
	for _, s := range w.staged {
		vi, ok := w.index[s.visitor]
		if !ok {
			vi = int32(len(w.visits))
			if cap(w.visits) > len(w.visits) {
				w.visits = w.visits[:vi+1]
				v := &w.visits[vi]
				v.visitor, v.changes, v.msgs = s.visitor, v.changes[:0], v.msgs[:0]
			} else {
				w.visits = append(w.visits, visit{visitor: s.visitor})
			}
			w.index[s.visitor] = vi
		}
		v := &w.visits[vi]
		v.changes = append(v.changes, s.c)
		if n := len(v.msgs); n == 0 || v.msgs[n-1] != mi {
			v.msgs = append(v.msgs, mi)
		}
		w.events++
	}
}

const maxRounds = 16 // conflict rounds before a batch's messages are redelivered

// flush writes every visit of the batch, then acknowledges its messages.
func (w *worker) flush() {
	if len(w.msgs) == 0 {
		return
	}
	start := time.Now()
	tax := w.b.live.Load()
	todo := make([]int32, len(w.visits))
	for i := range todo {
		todo[i] = int32(i)
	}
	for round := 0; len(todo) > 0; round++ {
		if round == maxRounds {
			for _, vi := range todo {
				w.fail(vi)
			}
			break
		}
		if round > 0 {
			todo = w.reload(todo)
		}
		todo = w.write(todo, tax)
	}
	// The confirmations of the previous batch's acknowledgements had this
	// batch's time to arrive; waiting for them here, not for this batch's,
	// keeps the server's round trip off the partition's path while bounding
	// what is unconfirmed to one batch.
	w.acking.Wait()
	for i := range w.msgs {
		bm := &w.msgs[i]
		for _, m := range append(bm.again, bm.m) {
			if bm.failed {
				_ = m.NakWithDelay(time.Second)
				w.b.m.nacked.Inc()
				continue
			}
			w.acking.Go(func() { w.ack(m) })
			w.b.m.acked.Inc()
		}
	}
	w.b.m.writes.Add(w.writes)
	w.b.m.applied.Add(w.applied)
	w.b.m.duplicates.Add(w.dups)
	w.writes, w.applied, w.dups = 0, 0, 0
	w.b.m.flush.Observe(time.Since(start).Seconds())
	// Reset the batch, keeping its memory.
	clear(w.msgs)
	w.msgs = w.msgs[:0]
	clear(w.index)
	clear(w.seqs)
	for i := range w.visits {
		v := &w.visits[i]
		clear(v.changes)
		v.visitor, v.changes, v.msgs = "", v.changes[:0], v.msgs[:0]
	}
	w.visits = w.visits[:0]
	clear(w.contribs)
	w.contribs = w.contribs[:0]
	w.events = 0
	w.arena = w.arena[:0]
	if w.abandoned {
		// Writes left unacknowledged may still be sent again by the client:
		// their bytes must stay as they are.
		w.arena, w.abandoned = nil, false
	}
	if len(w.records) > w.b.o.maxCached/max(len(w.b.o.owned), 1) {
		w.shrink()
	}
}

// fail marks the messages of a visit for redelivery.
func (w *worker) fail(vi int32) {
	for _, mi := range w.visits[vi].msgs {
		w.msgs[mi].failed = true
	}
}

// shrink forgets an eighth of the held records; they are read again when
// their visitors come back.
func (w *worker) shrink() {
	n := len(w.records) / 8
	for k := range w.records {
		if n--; n < 0 {
			break
		}
		delete(w.records, k)
	}
}
