package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adsyn/adsyn/syndication/webhook"
)

// syndCeiling posts signed bodies of a delivery's size to the receivers
// from conc goroutines for d, signed with each partner's own secret, and
// returns the 2xx answers per second and their count.
func syndCeiling(ctx context.Context, recv []*syndReceiver, conc int, d time.Duration) (float64, int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	body := []byte(`{"type":"profile.upserted","timestamp":"2025-01-01T00:00:00Z","data":{"id":"u_ceiling","version":1,"name":"Bench User","city":"Lyon","competence":["Go","Plumbing"],"price":{"amount":"45.50","currency":"EUR"},"language":"fr"}}`)
	var n atomic.Int64
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := recv[g%len(recv)]
			for i := 0; cctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(cctx, http.MethodPost, r.url, strings.NewReader(string(body)))
				ts := time.Now().Unix()
				id := "msg_ceiling_" + strconv.Itoa(g) + "_" + strconv.Itoa(i)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(webhook.HeaderID, id)
				req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
				req.Header.Set(webhook.HeaderSignature, webhook.Sign(r.key, id, ts, body))
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 200 && resp.StatusCode < 300 {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), int(n.Load())
}

type syndGot struct {
	user    string
	version uint64
	at      time.Time
}

// syndReceiver is a loopback partner that verifies signatures and notes
// when each user's version arrived.
type syndReceiver struct {
	url   string
	srv   *http.Server
	key   []byte // set before any delivery
	floor uint64 // deliveries of versions at or below it belong to an earlier phase
	count atomic.Int64
	mu    sync.Mutex
	got   []syndGot
	seen  map[string]bool
	top   map[string]uint64 // the highest version each user got
	// want is what a phase waits for, each user at a version (expect);
	// reachedN counts those reached as deliveries arrive, so the wait polls
	// a counter instead of scanning every user under the lock each time.
	want     map[string]uint64
	reachedN atomic.Int64
}

func startSyndReceiver() (*syndReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("syndication: receiver: %w", err)
	}
	r := &syndReceiver{url: "http://" + ln.Addr().String() + "/hook", seen: map[string]bool{}, top: map[string]uint64{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *syndReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil || webhook.Verify(r.key, req.Header, body, time.Now()) != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var env struct {
		Data struct {
			ID      string `json:"id"`
			Version uint64 `json:"version"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &env)
	now := time.Now()
	id := req.Header.Get(webhook.HeaderID)
	r.mu.Lock()
	// A partner drops duplicates by webhook-id; a late delivery of an earlier
	// phase's change (a redelivery, say) is not this phase's.
	if !r.seen[id] && env.Data.Version > r.floor {
		r.seen[id] = true
		r.got = append(r.got, syndGot{user: env.Data.ID, version: env.Data.Version, at: now})
		old := r.top[env.Data.ID]
		r.top[env.Data.ID] = max(old, env.Data.Version)
		if v, ok := r.want[env.Data.ID]; ok && old < v && env.Data.Version >= v {
			r.reachedN.Add(1)
		}
		r.count.Add(1)
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// reset starts a phase whose changes all have versions above floor.
func (r *syndReceiver) reset(floor uint64) {
	r.mu.Lock()
	r.got, r.floor = nil, floor
	r.seen, r.top, r.want = map[string]bool{}, map[string]uint64{}, nil
	r.count.Store(0)
	r.reachedN.Store(0)
	r.mu.Unlock()
}

// expect sets what the phase waits for: each user of last at version
// last[user] or a later one. last is not changed afterwards.
func (r *syndReceiver) expect(last map[string]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.want = last
	n := 0
	for u, v := range last {
		if r.top[u] >= v {
			n++
		}
	}
	r.reachedN.Store(int64(n))
}

// reached counts the users expected whose version, or a later one, arrived.
func (r *syndReceiver) reached() int { return int(r.reachedN.Load()) }

func (r *syndReceiver) byUser() map[string][]syndGot {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string][]syndGot{}
	for _, g := range r.got {
		m[g.user] = append(m[g.user], g)
	}
	return m
}

func (r *syndReceiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		_ = r.srv.Close()
	}
}
