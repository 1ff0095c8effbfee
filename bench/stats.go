package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/stats"
)

// Stats measures the aggregator, events from the stream to hourly counters
// exactly once, in rounds: each round publishes its share of the events,
// then an aggregator of its own applies them and the ceiling reads and
// decodes the same events with the same parallelism (one reader per
// partition, as the aggregator has one puller per partition), in alternating
// order. It then times the stats API answering a site's 30-day hourly query
// with breakdown=page, one query at a time: its p50, p99 and slowest (not a
// p99.9: there are too few queries for one); a campaign's hourly query is
// timed beside it.
func Stats(ctx context.Context, o Options, progress io.Writer) (Result, error) {
	o.defaults()
	nats, cleanup, err := startNATS(ctx)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	return runStats(ctx, nats.conn, o, statsOptions{Log: o.Log}, progress)
}

func runStats(ctx context.Context, conn *bus.Conn, o Options, so statsOptions, progress io.Writer) (Result, error) {
	so.defaults()
	res := Result{Scenario: "stats", CeilingName: "parallel read+decode", NoP999: true, Extra: map[string]any{}}
	run, err := statsRun(&so)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "stats: %d rounds of %d events (%d campaigns, %d sites, %d hours), %d partitions\n",
		o.Rounds, so.Events, so.Campaigns, so.Sites, so.Hours, so.Partitions)
	var aggRounds, ceilRounds, ratios []float64
	var acked uint64
	var flushes, writes float64
	var ceilRemade int64
	for r := range o.Rounds {
		first, err := lastSeq(ctx, conn)
		if err != nil {
			return res, err
		}
		n, err := statsPublish(ctx, conn, run, &so)
		if err != nil {
			return res, err
		}
		acked += n
		var agg aggRound
		var ceil float64
		var remade int64
		aggFirst := r%2 == 1
		if aggFirst {
			if agg, err = aggregate(ctx, conn, run, r, first+1, n, &so); err != nil {
				return res, err
			}
		}
		if ceil, remade, err = readParallel(ctx, conn, first+1, so.Partitions); err != nil {
			return res, err
		}
		ceilRemade += remade
		if !aggFirst {
			if agg, err = aggregate(ctx, conn, run, r, first+1, n, &so); err != nil {
				return res, err
			}
		}
		fmt.Fprintf(progress, "  round %d/%d: aggregator %.0f events/s, parallel read %.0f events/s (%.2f)\n", r+1, o.Rounds, agg.perS, ceil, agg.perS/ceil)
		aggRounds, ceilRounds, ratios = append(aggRounds, agg.perS), append(ceilRounds, ceil), append(ratios, agg.perS/ceil)
		flushes += agg.flushes
		writes += agg.writes
	}
	res.Ops = int64(acked)
	res.OpsPerS, res.Ceiling, res.Ratio = median(aggRounds), median(ceilRounds), median(ratios)
	counted, visitors, err := statsCount(ctx, conn.JS, run, &so)
	if err != nil {
		return res, err
	}
	res.Lost = int64(acked) - counted
	if res.Lost != 0 {
		// What the bucket holds, for whoever reads this: records missing, or
		// not read.
		if st, err := conn.JS.Stream(ctx, bus.KVStream(bus.BucketStats)); err == nil {
			if info, err := st.Info(ctx, jetstream.WithSubjectFilter("$KV."+bus.BucketStats+".camp."+run+"c0.*")); err == nil {
				fmt.Fprintf(progress, "stats: the bucket holds %d messages in all; campaign %sc0 has %d hours stored\n", info.State.Msgs, run, len(info.State.Subjects))
			}
		}
	}
	fmt.Fprintf(progress, "stats: the records count %d of the %d events published\n", counted, acked)
	// The visitors' sketches against the known set the generator used.
	known := 0
	for _, v := range so.seen {
		if v {
			known++
		}
	}
	if visitors != nil && known > 0 {
		est := visitors.Estimate()
		res.Extra["visitors_known"] = known
		res.Extra["visitors_estimated"] = est
		res.Extra["visitors_error_pct"] = math.Round(10000*math.Abs(float64(est)-float64(known))/float64(known)) / 100
	}
	res.Extra["mix"] = fmt.Sprintf("%.0f%% pageviews, %.0f%% searches, the rest ad events (%.0f%% clicks, %.0f%% conversions among them); %.0f%% with a visitor id",
		100*statsPageviews, 100*statsSearches, 100*so.ClickRate, 100*statsConversionRate, 100*statsIdentified)
	q, err := statsQuery(ctx, conn, run, &so, progress)
	if err != nil {
		return res, err
	}
	res.P50, res.P99 = q.P50, q.P99
	res.Extra["rounds"] = ratios
	res.Extra["latency_is"] = "the stats API answering a site's 30-day hourly query with breakdown=page, one at a time, the current hour's records rewritten before each"
	res.Extra["query_first_ms"] = q.First
	res.Extra["query_max_ms"] = q.Max
	res.Extra["query_hours"] = q.Hours
	res.Extra["query_records"] = q.Records
	res.Extra["queries"] = q.Queries
	res.Extra["query_body_bytes"] = q.BodyBytes
	res.Extra["campaign_query_p50_ms"] = q.CampP50
	res.Extra["campaign_query_p99_ms"] = q.CampP99
	res.Extra["campaign_query_max_ms"] = q.CampMax
	res.Extra["campaign_query_body_bytes"] = q.CampBodyBytes
	res.Extra["record_writes"] = writes
	res.Extra["flushes"] = flushes
	res.Extra["ceiling_consumers_remade"] = ceilRemade // after 10 s without a delivery
	res.Extra["partitions"] = so.Partitions
	return res, nil
}

// statsCPM is every campaign's price per thousand impressions.
const statsCPM = 2.0

// aggRound is what one aggregator round measured.
type aggRound struct {
	perS, flushes, writes float64
}

// aggregate runs an aggregator of its own from stream sequence first until
// it has applied n events, and stops it.
func aggregate(ctx context.Context, conn *bus.Conn, run string, round int, first, n uint64, so *statsOptions) (aggRound, error) {
	reg := metrics.NewRegistry()
	agg, err := stats.New(conn.JS, stats.WithConsumer(fmt.Sprintf("bench_%s_%d", run, round)), stats.WithStartSequence(first),
		stats.WithPartitions(so.Partitions), stats.WithCPM(func(string) (float64, bool) { return statsCPM, true }),
		stats.WithLogger(so.Log), stats.WithMetrics(reg))
	if err != nil {
		return aggRound{}, err
	}
	t0 := time.Now()
	if err := agg.Start(ctx); err != nil {
		return aggRound{}, err
	}
	deadline := time.Now().Add(time.Minute + time.Duration(n/10_000)*time.Second)
	for agg.Applied() < n && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
	el := time.Since(t0).Seconds()
	applied := agg.Applied()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := agg.Stop(sctx); err != nil {
		return aggRound{}, err
	}
	if applied < n {
		return aggRound{}, fmt.Errorf("stats: the aggregator applied %d of %d events", applied, n)
	}
	return aggRound{perS: float64(applied) / el, flushes: counter(reg, "adsyn_stats_flushes_total"), writes: counter(reg, "adsyn_stats_record_writes_total")}, nil
}

// counter reads one unlabelled series of reg.
func counter(reg *metrics.Registry, name string) float64 {
	var b strings.Builder
	reg.WriteText(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			_, _ = fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// readParallel reads and decodes the events from stream sequence first to
// the stream's end with one reader per partition, and returns events per
// second: what the aggregator's pullers would reach if counting, writing
// and acknowledging were free. remade counts the consumers made again after
// a stall. The consumers are deleted after the time is taken: the server
// has let a delete wait 5 s unanswered.
func readParallel(ctx context.Context, conn *bus.Conn, first uint64, partitions int) (perS float64, remade int64, err error) {
	s, err := conn.JS.Stream(ctx, bus.StreamEvents)
	if err != nil {
		return 0, 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	last := info.State.LastSeq
	var total, stalls atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var made []string
	r := partitionRead{s: s, last: last, total: &total, made: func(name string) {
		mu.Lock()
		made = append(made, name)
		mu.Unlock()
	}}
	errs := make(chan error, partitions)
	t0 := time.Now()
	for p := range partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.partition(ctx, p, first, &stalls); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0).Seconds()
	for _, name := range made {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = s.DeleteConsumer(dctx, name) // else gone a minute after its last pull
			cancel()
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	return float64(total.Load()) / el, stalls.Load(), nil
}

// partitionRead is what the readers of one ceiling round share.
type partitionRead struct {
	s     jetstream.Stream
	last  uint64 // the stream's last sequence when the round began
	total *atomic.Int64
	made  func(consumer string)
}

// partition reads partition p's events from first to the round's last as
// the aggregator's puller does (a pull consumer on the partition's subjects,
// the puller's pull options: stats.PullOptions) and decodes them; it
// acknowledges none. A consumer that delivers nothing for 10 s is made again
// from the next sequence, counted in stalls, and the time counts.
func (r *partitionRead) partition(ctx context.Context, p int, first uint64, stalls *atomic.Int64) error {
	start := time.Now()
	for next := first; ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Since(start) > 2*time.Minute {
			return fmt.Errorf("stats: ceiling read of partition %d: no progress in 2 minutes", p)
		}
		done, seq, err := r.from(ctx, p, next)
		if done || err != nil {
			return err
		}
		stalls.Add(1)
		next = seq
	}
}

// from reads partition p from sequence first with a consumer of its own,
// until the consumer has nothing left (nothing is published during the
// read) or a stall; it returns the next sequence to read after a stall.
// The pending count the server gives with a new consumer, and with each
// message, was often above the truth (messages before first in its first
// block counted too, it seems), so a reader waiting for it to reach 0 on
// a partition's last message waited for nothing: after 20 ms without a
// message, the consumer's info, counted afresh, says whether it is done.
func (r *partitionRead) from(ctx context.Context, p int, first uint64) (done bool, next uint64, err error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c, err := r.s.CreateConsumer(cctx, jetstream.ConsumerConfig{
		FilterSubject:     event.SubjectFilter(p),
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       first,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute, // if the delete is lost
	})
	cancel()
	if err != nil {
		return false, first, nil // asked again by the caller, within its bound
	}
	r.made(c.CachedInfo().Name)
	if c.CachedInfo().NumPending == 0 {
		return true, 0, nil // nothing of this partition left in the range
	}
	it, err := c.Messages(stats.PullOptions()...)
	if err != nil {
		return false, 0, fmt.Errorf("stats: ceiling read: %w", err)
	}
	defer it.Stop()
	next = first
	for quiet := time.Now(); ; {
		m, err := it.Next(jetstream.NextMaxWait(20 * time.Millisecond))
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoHeartbeat) {
			// Missed heartbeats: the iterator pulls again, as the puller's
			// does. An info request the server leaves unanswered costs 1 s.
			ictx, cancel := context.WithTimeout(ctx, time.Second)
			ci, err := c.Info(ictx)
			cancel()
			if err == nil && ci.NumPending == 0 && ci.Delivered.Stream < next {
				return true, 0, nil // and the last message delivered is read
			}
			if time.Since(quiet) > 10*time.Second {
				return false, next, nil // a stall: a new consumer
			}
			continue
		}
		if err != nil {
			return false, 0, fmt.Errorf("stats: ceiling read of partition %d: %w", p, err)
		}
		quiet = time.Now()
		md, err := m.Metadata()
		if err != nil {
			return false, 0, err
		}
		n, err := event.DecodeBatch(m.Data(), func(*event.Event) error { return nil })
		r.total.Add(int64(n))
		if err != nil {
			return false, 0, err
		}
		next = md.Sequence.Stream + 1
		if md.NumPending == 0 || md.Sequence.Stream >= r.last {
			return true, 0, nil
		}
	}
}
