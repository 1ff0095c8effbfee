package stats

import (
	"context"
	"fmt"
	"runtime"
	"sync"

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
	recs, _, err := readRangeOf(ctx, js, s, id, from, to, want, nil)
	return recs, err
}

// readRangeOf is readRange for the keys keep accepts (nil: every one),
// with each record's revision and encoded size.
func readRangeOf(ctx context.Context, js jetstream.JetStream, s Scope, id string, from, to int64, want tally.DimMask, keep func(key string) bool) (map[int64]*Record, map[int64]stored, error) {
	if !ValidID(id) {
		return nil, nil, ErrBadID
	}
	// The newest revision of each of the id's keys, filtered here by hour:
	// a filter on the range's exact keys costs the server a check of every
	// pair of filter subjects, ten times slower for a month.
	dec := newRangeDecoder(want)
	defer dec.stop()
	err := bus.Latest(ctx, js, bus.BucketStats, s.Prefix()+"."+id+".*", false, func(key string, m jetstream.Msg) error {
		if len(m.Data()) == 0 || keep != nil && !keep(key) {
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
		dec.add(rangeRecord{h, key, m.Data(), stored{md.Sequence.Stream, len(m.Data())}})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("stats: read %s %s: %w", s.Prefix(), id, err)
	}
	return dec.wait()
}

// stored is what a read record was in the bucket: its revision and size.
type stored struct {
	rev  uint64
	size int
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
	as   map[int64]stored
	err  error
	done bool
}

type rangeRecord struct {
	hour int64
	key  string
	data []byte
	as   stored
}

func newRangeDecoder(want tally.DimMask) *rangeDecoder {
	d := &rangeDecoder{want: want, next: make(chan rangeRecord, 256), out: map[int64]*Record{}, as: map[int64]stored{}}
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
			d.as[r.hour] = r.as
		}
		d.mu.Unlock()
	}
}

// add queues one record: an hour's key comes once, at its newest revision.
func (d *rangeDecoder) add(r rangeRecord) { d.next <- r }

// wait returns the decoded records, and what each was in the bucket, once
// every queued one is done.
func (d *rangeDecoder) wait() (map[int64]*Record, map[int64]stored, error) {
	d.stop()
	if d.err != nil {
		return nil, nil, d.err
	}
	return d.out, d.as, nil
}

func (d *rangeDecoder) stop() {
	if !d.done {
		d.done = true
		close(d.next)
		d.wg.Wait()
	}
}
