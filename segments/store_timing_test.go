package segments

import (
	"context"
	"math/rand"
	"strconv"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
)

// BenchmarkStoreGet is Store.Get on a cache hit, with its baseline twin: a
// map behind a read lock, the least a shared cache can cost.
func BenchmarkStoreGet(b *testing.B) {
	conn := bustest.Start(b)
	s := newStore(b, conn)
	r := sampleRecord()
	r.Visitor = "hot-visitor-0123456789"
	putRecord(b, conn, r)
	ctx := context.Background()
	warm(b, s, r.Visitor)
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Get(ctx, r.Visitor); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hit-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Get(ctx, r.Visitor); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("baseline-map", func(b *testing.B) {
		var mu sync.RWMutex
		m := map[string]*Record{r.Visitor: &r}
		b.ReportAllocs()
		for b.Loop() {
			mu.RLock()
			_ = m[r.Visitor]
			mu.RUnlock()
		}
	})
}

// BenchmarkStoreZipf reads visitors in a Zipf mix (s=1.1) from a bucket of
// 100k records through a cache that holds about a fifth of them, and
// reports the hit ratio.
func BenchmarkStoreZipf(b *testing.B) {
	const visitors = 100_000
	conn := bustest.Start(b)
	fill(b, conn, visitors)
	s := newStore(b, conn, WithCache(8<<20, 5*60e9, 30e9))
	ctx := context.Background()
	z := rand.NewZipf(rand.New(rand.NewSource(1)), 1.1, 1, visitors-1)
	ids := make([]string, visitors)
	for i := range ids {
		ids[i] = "z" + strconv.Itoa(i)
	}
	for range 200_000 { // warm the cache
		if _, err := s.Get(ctx, ids[z.Uint64()]); err != nil {
			b.Fatal(err)
		}
	}
	h0, m0 := s.CacheStats()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Get(ctx, ids[z.Uint64()]); err != nil {
			b.Fatal(err)
		}
	}
	h, m := s.CacheStats()
	b.ReportMetric(float64(h-h0)/float64(h-h0+m-m0), "hit-ratio")
}

// fill writes n records z0…z<n-1> asynchronously.
func fill(b *testing.B, conn *bus.Conn, n int) {
	b.Helper()
	js, err := jetstream.New(conn.NC, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	r := sampleRecord()
	for i := range n {
		r.Visitor = "z" + strconv.Itoa(i)
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: "$KV." + bus.BucketSegments + "." + r.Visitor, Data: r.AppendMsgpack(nil)}); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-context.Background().Done():
	}
}
