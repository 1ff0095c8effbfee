package syndication_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication"
)

// TestServerRestart restarts NATS under a running worker: lanes, whose state
// lives in memory, come back and the partner still converges.
func TestServerRestart(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, ok())
	p := e.partner("p1", rc, profiles.FieldName)
	e.worker()
	var ids []string
	for i := range 10 {
		ids = append(ids, e.user(fmt.Sprintf(`{"name":"User %d","consents":{"syndication":true},"visibility":{"name":"public"}}`, i)).ID)
	}
	eventually(t, 10*time.Second, "before restart", func() (bool, string) { return converged(rc, e.expected(p.Contract())) })

	e.srv.Restart(t)
	// Reconnected clients carry on.
	// The registry still follows changes.
	name := "Renamed partner"
	eventually(t, 15*time.Second, "JetStream back", func() (bool, string) {
		_, err := e.reg.Update(e.ctx, "p1", &syndication.Spec{Name: &name})
		return err == nil, fmt.Sprint(err)
	})
	for _, id := range ids[:5] {
		e.patch(id, `{"name":"After restart"}`)
	}
	if err := e.store.Erase(e.ctx, ids[9]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, why := converged(rc, e.expected(p.Contract()))
		if ok {
			break
		}
		if time.Now().After(deadline) {
			e.debug(t, "p1", ids[0])
			t.Fatal(why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
