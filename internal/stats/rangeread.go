package stats

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/stats/tally"
)

// ReadRange returns the records of scope and id for hours [from, to),
// decoding only the dimensions in want (and a site's whole audience, a
// campaign's reach), the newest revision of each. Its cost grows with the
// id's number of hours.
func ReadRange(ctx context.Context, js jetstream.JetStream, s Scope, id string, from, to int64, want ...Dim) (map[int64]*Record, error) {
	mask := tally.WithAudience | tally.AllAudience
	for _, d := range want {
		mask |= tally.MaskOf(d)
	}
	return readRange(ctx, js, s, id, from, to, mask)
}

func readRange(ctx context.Context, js jetstream.JetStream, s Scope, id string, from, to int64, want tally.DimMask) (map[int64]*Record, error) {
	if !ValidID(id) {
		return nil, ErrBadID
	}
	// The newest revision of each of the id's keys, filtered here by hour:
	// a filter on the range's exact keys costs the server a check of every
	// pair of filter subjects, ten times slower for a month. An ordered
	// consumer read until the server has nothing pending, not a KV watch: a
	// watch under load may end its initial values on a timer, with keys
	// missing (nats.go sends its nil marker when no key came for a while).
	prefix, stream := "$KV."+bus.BucketStats+".", bus.KVStream(bus.BucketStats)
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{prefix + s.Prefix() + "." + id + ".*"},
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		InactiveThreshold: 10 * time.Second, // if the delete below is lost
	})
	if err != nil {
		return nil, fmt.Errorf("stats: read %s %s: %w", s.Prefix(), id, err)
	}
	// Gone at once: reads come by the thousand (a summary, the dashboard)
	// and the server bounds the consumers.
	defer func() {
		if info := c.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = js.DeleteConsumer(dctx, stream, info.Name)
			cancel()
		}
	}()
	dec := newRangeDecoder(want)
	defer dec.stop()
	// On a cluster a new consumer may have no leader yet for a moment: its
	// first fetch meets no responders, and is tried again.
	tries, empties := 0, 0
	leaderless := func(err error) bool {
		if errors.Is(err, nats.ErrNoResponders) && tries < 10 && ctx.Err() == nil {
			tries++
			time.Sleep(100 * time.Millisecond)
			return true
		}
		return false
	}
	for {
		batch, err := c.FetchNoWait(256)
		if err != nil {
			if leaderless(err) {
				continue
			}
			return nil, fmt.Errorf("stats: read %s %s: %w", s.Prefix(), id, err)
		}
		got, done := 0, false
		for m := range batch.Messages() {
			got++
			if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
				done = true
			}
			if op := m.Headers().Get("KV-Operation"); op != "" || len(m.Data()) == 0 {
				continue // deleted or purged
			}
			key := strings.TrimPrefix(m.Subject(), prefix)
			h, ok := tally.ParseHour(key)
			if !ok || h < from || h >= to {
				continue
			}
			dec.add(h, key, m.Data())
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			if got == 0 && leaderless(err) {
				continue
			}
			return nil, fmt.Errorf("stats: read %s %s: %w", s.Prefix(), id, err)
		}
		if got == 0 && !done && empties < 10 && ctx.Err() == nil {
			// Nothing came: under load a fetch without waiting can find
			// the new consumer not ready yet. Its info tells an empty range
			// from a slow one.
			empties++
			if info, err := c.Info(ctx); err == nil && info.NumPending > 0 {
				time.Sleep(20 * time.Millisecond)
				continue
			}
		}
		if got == 0 || done {
			return dec.wait()
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("stats: read %s %s: %w", s.Prefix(), id, ctx.Err())
		}
	}
}

// rangeDecoder decodes a range's records on a few goroutines while the
// rest are fetched: decoding (sketches, breakdowns) is most of a long
// range's cost, and the cores are otherwise idle meanwhile.
type rangeDecoder struct {
	want tally.DimMask
	next chan rangeRecord
	wg   sync.WaitGroup
	mu   sync.Mutex
	out  map[int64]*Record
	err  error
	done bool
}

type rangeRecord struct {
	hour int64
	key  string
	data []byte
}

func newRangeDecoder(want tally.DimMask) *rangeDecoder {
	d := &rangeDecoder{want: want, next: make(chan rangeRecord, 256), out: map[int64]*Record{}}
	for range min(runtime.GOMAXPROCS(0), 4) {
		d.wg.Add(1)
		go d.work()
	}
	return d
}

func (d *rangeDecoder) work() {
	defer d.wg.Done()
	for r := range d.next {
		rec, err := tally.DecodeRecordDims(r.data, d.want)
		d.mu.Lock()
		switch {
		case err != nil && d.err == nil:
			d.err = fmt.Errorf("stats: %s: %w", r.key, err)
		case err == nil:
			d.out[r.hour] = rec
		}
		d.mu.Unlock()
	}
}

// add queues one record: an hour's key comes once, at its newest revision.
func (d *rangeDecoder) add(hour int64, key string, data []byte) {
	d.next <- rangeRecord{hour, key, data}
}

// wait returns the decoded records once every queued one is done.
func (d *rangeDecoder) wait() (map[int64]*Record, error) {
	d.stop()
	if d.err != nil {
		return nil, d.err
	}
	return d.out, nil
}

func (d *rangeDecoder) stop() {
	if !d.done {
		d.done = true
		close(d.next)
		d.wg.Wait()
	}
}
