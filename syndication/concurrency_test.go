package syndication_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication"
)

// gate holds each request until want are in flight at once (or, so that a
// sender that never gets there still finishes, until release passes), and
// notes the most it saw in flight.
type gate struct {
	mu       sync.Mutex
	cond     *sync.Cond
	want     int
	inFlight int
	most     int
	release  time.Duration
}

func newGate(want int, release time.Duration) *gate {
	g := &gate{want: want, release: release}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *gate) behaviour() behaviour {
	return func(_ int, _ http.ResponseWriter, _ *http.Request) bool {
		g.mu.Lock()
		g.inFlight++
		g.most = max(g.most, g.inFlight)
		if g.inFlight >= g.want {
			g.cond.Broadcast()
		}
		timer := time.AfterFunc(g.release, func() {
			g.mu.Lock()
			g.cond.Broadcast()
			g.mu.Unlock()
		})
		start := time.Now()
		for g.inFlight < g.want && g.most < g.want && time.Since(start) < g.release {
			g.cond.Wait()
		}
		timer.Stop()
		g.inFlight--
		g.mu.Unlock()
		return false // answered normally
	}
}

// max returns the most requests seen in flight since the previous call,
// and from now on holds each request until want are in flight.
func (g *gate) max(want int, release time.Duration) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	most := g.most
	g.most, g.want, g.release = g.inFlight, want, release
	return most
}

// TestLaneDeliversUsersAtOnce: a lane delivers the distinct users of a task
// at once, up to the partner's concurrency and never beyond it, and every
// user still ends with its newest view, in order.
func TestLaneDeliversUsersAtOnce(t *testing.T) {
	e := newEnv(t, syndication.WithTimeout(30*time.Second))
	const concurrency = 3
	e.wopts = append(e.wopts, syndication.WithPartnerConcurrency(concurrency))
	// One lane, so the requests in flight are the users of one task.
	reg, err := syndication.NewRegistry(e.ctx, e.conn.JS, append(slices.Clone(e.opts), syndication.WithShards(1))...)
	if err != nil {
		t.Fatal(err)
	}
	g := newGate(concurrency, 2*time.Second)
	rc := newReceiver(t, g.behaviour())
	url := rc.srv.URL + "/hook"
	p, err := reg.Create(e.ctx, &syndication.Spec{ID: "wide", URL: &url, Fields: []profiles.Field{profiles.FieldName}})
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	rc.secret = p.Secret
	rc.mu.Unlock()
	// A first user, delivered alone, shows the lane is up and the new
	// partner's resync done (it queues a task per user).
	e.worker()
	e.user(`{"name":"First","consents":{"syndication":true},"visibility":{"name":"public"}}`)
	eventually(t, 60*time.Second, "first delivered", func() (bool, string) { return converged(rc, e.expected(p.Contract())) })
	// Changes coming together are fanned out as few tasks: the lane has
	// several users to deliver at once. They are written at once, so that
	// they come together however slow the machine.
	users := make([]*profiles.Profile, 40)
	errs := make([]error, len(users))
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var pt profiles.Patch
			if errs[i] = json.Unmarshal([]byte(fmt.Sprintf(`{"name":"User %d","consents":{"syndication":true},"visibility":{"name":"public"}}`, i)), &pt); errs[i] == nil {
				users[i], errs[i] = e.store.Create(e.ctx, &pt, "test")
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "delivered", func() (bool, string) { return converged(rc, e.expected(p.Contract())) })
	if got := g.max(concurrency+1, 300*time.Millisecond); got != concurrency {
		t.Errorf("at most %d requests in flight, want the partner's concurrency %d", got, concurrency)
	}
	// Now each request waits for one more than the bound, which must never
	// come: the requests of each wave are held together a while.
	for _, u := range users[:12] {
		e.patch(u.ID, `{"name":"Renamed"}`)
	}
	eventually(t, 60*time.Second, "changes delivered", func() (bool, string) { return converged(rc, e.expected(p.Contract())) })
	if got := g.max(0, 0); got > concurrency {
		t.Errorf("%d requests in flight, beyond the partner's concurrency %d", got, concurrency)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.problems) > 0 {
		t.Errorf("%s", strings.Join(rc.problems, "; "))
	}
}
