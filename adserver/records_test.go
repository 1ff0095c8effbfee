package adserver

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/adsyn/adsyn/segments"
)

// slowRecords is a store with Peek and Load whose reads of the bucket wait
// until release is closed, as a cold read behind a busy bucket does.
type slowRecords struct {
	bucket  map[string]*segments.Record
	entered chan string // each read of the bucket, as it starts
	release chan struct{}
	mu      sync.Mutex
	cache   map[string]*segments.Record // what Load has read; nil value: no record
}

func newSlowRecords(bucket map[string]*segments.Record) *slowRecords {
	return &slowRecords{bucket: bucket, entered: make(chan string, 16), release: make(chan struct{}), cache: map[string]*segments.Record{}}
}

func (s *slowRecords) Get(ctx context.Context, v string) (*segments.Record, error) {
	if r, known := s.Peek(v); known {
		if r == nil {
			return nil, segments.ErrNotFound
		}
		return r, nil
	}
	return s.Load(ctx, v)
}

func (s *slowRecords) Peek(v string) (*segments.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.cache[v]
	return r, ok
}

func (s *slowRecords) Load(ctx context.Context, v string) (*segments.Record, error) {
	s.entered <- v
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r := s.bucket[v]
	s.mu.Lock()
	s.cache[v] = r
	s.mu.Unlock()
	if r == nil {
		return nil, segments.ErrNotFound
	}
	return r, nil
}

// A record the cache does not hold is waited for only up to the edge's
// record wait: the ad is then decided failing closed (no capped campaign,
// no campaign excluding a segment), and the read, going on, serves the
// visitor's next request.
func TestColdRecordDoesNotBlockTheAd(t *testing.T) {
	capped := camp("c-cap", func(c *Campaign) {
		c.Priority = 4
		c.Caps = []FreqCap{{Count: 3, Window: Duration(24 * time.Hour)}}
	})
	excluding := camp("c-none", func(c *Campaign) {
		c.Priority = 6
		c.Targeting.Segments.None = []string{"cycling"}
	})
	recs := newSlowRecords(map[string]*segments.Record{"v1": record("cycling"), "v2": record("golf")})
	env := newEdgeEnv(t, testSnap(capped, excluding, camp("c1")), WithSegments(recs), WithConsent(allowAll),
		WithRecordWait(time.Millisecond))
	for _, v := range []string{"v1", "v2", "v3"} {
		if _, ad := env.ad(t, "site=s1&slot=side&u="+v); ad.Campaign != "c1" {
			t.Fatalf("%s, record not read: served %q, want the uncapped, unexcluding c1", v, ad.Campaign)
		}
	}
	if got := counter(env.reg, "adsyn_ad_record_late_total"); got != "3" {
		t.Fatalf("late records %q, want 3", got)
	}
	close(recs.release)
	waitFor(t, "the reads to end", 5*time.Second, func() bool {
		_, k1 := recs.Peek("v1")
		_, k2 := recs.Peek("v2")
		_, k3 := recs.Peek("v3")
		return k1 && k2 && k3
	})
	// Now known: the cap is checked (none reached) for every visitor, and
	// v1's excluded segment is.
	for v, want := range map[string]string{"v1": "c-cap", "v2": "c-cap", "v3": "c-cap"} {
		if _, ad := env.ad(t, "site=s1&slot=side&u="+v); ad.Campaign != want {
			t.Fatalf("%s, record read: served %q, want %q", v, ad.Campaign, want)
		}
	}
	if got := counter(env.reg, "adsyn_ad_record_late_total"); got != "3" {
		t.Fatalf("late records %q, want still 3", got)
	}
}

// With a negative wait the edge waits for the read, whatever it takes.
func TestRecordWaitNegativeWaits(t *testing.T) {
	capped := camp("c-cap", func(c *Campaign) {
		c.Priority = 4
		c.Caps = []FreqCap{{Count: 3, Window: Duration(24 * time.Hour)}}
	})
	recs := newSlowRecords(map[string]*segments.Record{"v1": record()})
	env := newEdgeEnv(t, testSnap(capped, camp("c1")), WithSegments(recs), WithConsent(allowAll), WithRecordWait(-1))
	served := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", env.base+"/ad?site=s1&slot=side&u=v1", nil)
		req.Header.Set("User-Agent", BenchUserAgent)
		var a adJSON
		if res, err := http.DefaultClient.Do(req); err == nil {
			_ = json.NewDecoder(res.Body).Decode(&a)
			res.Body.Close()
		}
		served <- a.Campaign
	}()
	<-recs.entered // the read has started; only now may it end
	close(recs.release)
	if got := <-served; got != "c-cap" {
		t.Fatalf("served %q, want c-cap: the edge waits for the record", got)
	}
	if got := counter(env.reg, "adsyn_ad_record_late_total"); got != "0" {
		t.Fatalf("late records %q", got)
	}
}
