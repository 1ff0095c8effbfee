package syndication_test

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication"
)

// Markers of contact data: none may ever appear in what partners receive (P2).
const (
	markEmail  = "secret.mailbox"
	markPhone  = "+33 6 98 76 54 32"
	markResume = "resume-content-marker"
)

var allFields = profiles.PublicFields

// TestConvergence runs partners that fail in each way the issue names through
// a stream of profile changes, with the worker stopped and replaced by two
// others mid-stream, and checks every partner ends with exactly the newest
// view of every consented user and nothing of withdrawn or erased ones.
func TestConvergence(t *testing.T) {
	e := newEnv(t)
	receivers := map[string]*receiver{
		"healthy": newReceiver(t, ok()),
		"errors":  newReceiver(t, status(http.StatusInternalServerError, 12)),
		"slow":    newReceiver(t, hang(4)),
		"hangs":   newReceiver(t, hangUp(10)),
		"gone":    newReceiver(t, status(http.StatusGone, 1<<30)),
		"busy":    newReceiver(t, status(http.StatusTooManyRequests, 3)),
	}
	contracts := map[string][]profiles.Field{
		"healthy": allFields,
		"errors":  {profiles.FieldName, profiles.FieldCity},
		"slow":    {profiles.FieldName, profiles.FieldCompetence, profiles.FieldPrice},
		// A contract may list contact fields in a test of Build; the registry
		// refuses them, so here it lists everything it may.
		"hangs": allFields,
		"gone":  allFields,
		"busy":  {profiles.FieldName},
	}
	partners := map[string]syndication.Partner{}
	for id, rc := range receivers {
		partners[id] = e.partner(id, rc, contracts[id]...)
	}

	users := make([]*profiles.Profile, 0, 24)
	for i := range 24 {
		consent := i%4 != 3
		users = append(users, e.user(fmt.Sprintf(`{"name":"User %d","email":"u%d.%s@example.com","phone":"%s","city":"City %d",
			"competence":["Go","Skill %d"],"price":{"amount":"%d.50","currency":"EUR"},"language":"fr",
			"consents":{"syndication":%v},"visibility":{"name":"public","city":"public","competence":"public","price":"public","photo":"public"}}`,
			i, i, markEmail, markPhone, i, i, 40+i, consent)))
	}
	var photo bytes.Buffer // a real PNG: uploads are parsed to strip metadata
	if err := png.Encode(&photo, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	for _, u := range users[:6] {
		if _, err := e.store.PutMedia(e.ctx, u.ID, profiles.KindResume, []byte("%PDF-1.4 "+markResume)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.PutMedia(e.ctx, u.ID, profiles.KindPhoto, photo.Bytes()); err != nil {
			t.Fatal(err)
		}
	}

	stopFirst := e.worker()
	// Changes while the first worker runs.
	for i, u := range users {
		switch i % 6 {
		case 0:
			e.patch(u.ID, fmt.Sprintf(`{"name":"Renamed %d"}`, i))
		case 1:
			e.patch(u.ID, `{"consents":{"syndication":false}}`) // withdrawal
		case 2:
			e.patch(u.ID, `{"visibility":{"city":"private"}}`) // a field turned private
		}
	}
	// Let some deliveries happen, then stop the worker mid-stream.
	eventually(t, 10*time.Second, "first deliveries", func() (bool, string) {
		return len(receivers["healthy"].holds()) > 0, "nothing delivered yet"
	})
	stopFirst()
	for i, u := range users {
		switch i % 6 {
		case 3:
			e.patch(u.ID, `{"consents":{"syndication":true}}`) // late consent
		case 4:
			if err := e.store.Erase(e.ctx, u.ID); err != nil { // erasure
				t.Fatal(err)
			}
		case 5:
			e.patch(u.ID, `{"visibility":{"name":"private","city":"private","competence":"private","price":"private","photo":"private"}}`)
		}
	}
	// Two workers share the consumers from here.
	e.worker()
	e.worker()
	for i, u := range users {
		if i%6 == 0 {
			e.patch(u.ID, fmt.Sprintf(`{"name":"Final %d","price":{"amount":"99","currency":"USD"}}`, i))
		}
	}

	// The partner answering 410 is disabled; once its endpoint is back, an
	// operator enables it again and it catches up.
	eventually(t, 10*time.Second, "gone partner disabled", func() (bool, string) {
		p, _ := e.reg.Get("gone")
		return p.State == syndication.StateDisabled, string(p.State)
	})
	receivers["gone"].setBehaviour(ok())
	if _, err := e.reg.Update(e.ctx, "gone", &syndication.Spec{State: syndication.StateActive}); err != nil {
		t.Fatal(err)
	}

	for id, rc := range receivers {
		c := partners[id].Contract()
		deadline := time.Now().Add(25 * time.Second)
		for {
			ok, why := converged(rc, e.expected(c))
			if ok {
				break
			}
			if time.Now().After(deadline) {
				u := why[strings.LastIndex(why, " ")+1:]
				e.debug(t, id, u)
				t.Fatalf("partner %s: %s", id, why)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for id, rc := range receivers {
		rc.mu.Lock()
		problems, accepted := rc.problems, rc.accepted
		rc.mu.Unlock()
		if len(problems) > 0 {
			t.Errorf("partner %s: %s", id, strings.Join(problems, "; "))
		}
		if accepted == 0 {
			t.Errorf("partner %s received nothing", id)
		}
		t.Logf("partner %s: %d requests, %d accepted", id, rc.n, accepted)
		capture := rc.captured()
		for _, mark := range []string{markEmail, markPhone, markResume, "@example.com", "PDF"} {
			if bytes.Contains(capture, []byte(mark)) {
				t.Errorf("partner %s was sent %q (P2)", id, mark)
			}
		}
	}
	// Nothing went to the dead-letter stream: every failure here was retryable.
	for id := range receivers {
		if dl, err := e.led.DeadLetters(e.ctx, id, 100); err != nil || len(dl) > 0 {
			t.Errorf("dead letters of %s: %v %+v", id, err, dl)
		}
	}
	// Art. 19: the recipients of an erased user are known and hold nothing.
	erased := users[4].ID
	rs, err := e.led.Recipients(e.ctx, erased)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Holds {
			t.Errorf("recipient %s still holds data of an erased user", r.Partner)
		}
	}
	ds, _, err := e.led.ForPartner(e.ctx, "healthy", 0, 1000)
	if err != nil || len(ds) == 0 {
		t.Fatalf("delivery log: %v %d", err, len(ds))
	}
	for _, d := range ds {
		if d.WebhookID == "" || d.Attempts < 1 || d.Outcome == "" {
			t.Errorf("log entry %+v", d)
		}
	}
}

// TestRetryAfter checks a 429's Retry-After is a floor for the next attempt
// (a lower bound, not a timing).
func TestRetryAfter(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var first, second time.Time
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if n == 1 {
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		if second.IsZero() {
			second = time.Now()
		}
		return false
	})
	p := e.partner("busy", rc, profiles.FieldName)
	e.user(`{"name":"Ada","consents":{"syndication":true},"visibility":{"name":"public"}}`)
	e.worker()
	eventually(t, 10*time.Second, "delivered", func() (bool, string) { return converged(rc, e.expected(p.Contract())) })
	mu.Lock()
	defer mu.Unlock()
	if second.Sub(first) < time.Second {
		t.Errorf("retried %v after a 429 with Retry-After: 1", second.Sub(first))
	}
}

// TestDisabledPartnerGetsDeletions: a partner an operator disabled gets no
// new data but still gets the deletions of what it holds; enabled again, it
// catches up.
func TestDisabledPartnerGetsDeletions(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, ok())
	p := e.partner("ended", rc, profiles.FieldName)
	e.worker()
	a := e.user(`{"name":"Ann","consents":{"syndication":true},"visibility":{"name":"public"}}`)
	b := e.user(`{"name":"Bea","consents":{"syndication":true},"visibility":{"name":"public"}}`)
	eventually(t, 10*time.Second, "delivered", func() (bool, string) { return converged(rc, e.expected(p.Contract())) })
	if _, err := e.reg.Update(e.ctx, "ended", &syndication.Spec{State: syndication.StateDisabled}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "disabled seen by the worker", func() (bool, string) {
		got, _ := e.regs[0].Get("ended")
		return got.State == syndication.StateDisabled, "not yet"
	})
	e.patch(a.ID, `{"name":"Ann Renamed"}`)
	if err := e.store.Erase(e.ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	c := e.user(`{"name":"Cid","consents":{"syndication":true},"visibility":{"name":"public"}}`)
	eventually(t, 10*time.Second, "deletion while disabled", func() (bool, string) {
		_, held := rc.holds()[b.ID]
		return !held, "erased user still held"
	})
	// Once every task is worked off, nothing new has been sent.
	eventually(t, 10*time.Second, "queue worked off", func() (bool, string) {
		s, err := e.conn.JS.Stream(e.ctx, syndication.StreamOut)
		if err != nil {
			return false, err.Error()
		}
		info, err := s.Info(e.ctx)
		if err != nil || info.State.Msgs != 0 {
			return false, "tasks left"
		}
		c, err := e.conn.JS.Consumer(e.ctx, "KV_adsyn_profiles", syndication.ChangeConsumer)
		if err != nil {
			return false, err.Error()
		}
		ci, err := c.Info(e.ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0, "changes left"
	})
	got := rc.holds()
	if got[a.ID].Name != "Ann" {
		t.Errorf("disabled partner got new data: %+v", got[a.ID])
	}
	if _, held := got[c.ID]; held {
		t.Error("disabled partner got a new user")
	}
	if _, err := e.reg.Update(e.ctx, "ended", &syndication.Spec{State: syndication.StateActive}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "caught up", func() (bool, string) { return converged(rc, e.expected(p.Contract())) })
}
