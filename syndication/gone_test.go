package syndication_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication"
)

// A partner answering 410 to a first delivery is disabled, and the answer is
// on record: the delivery log holds it, and the user's recipients do not list
// the partner as holding data it refused.
func TestGoneIsLoggedBeforeTheDisable(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, status(http.StatusGone, 1<<30))
	e.partner("gone", rc, profiles.FieldName, profiles.FieldCity)
	u := e.user(`{"name":"Ann","city":"Lyon","consents":{"syndication":true},"visibility":{"name":"public","city":"public"}}`)
	e.worker()
	eventually(t, 10*time.Second, "partner disabled", func() (bool, string) {
		p, _ := e.reg.Get("gone")
		return p.State == syndication.StateDisabled, string(p.State)
	})
	log, err := e.led.ForUser(e.ctx, u.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range log {
		if d.Partner == "gone" && d.Outcome == syndication.OutcomeDisabled && d.Status == http.StatusGone {
			found = true
		}
	}
	if !found {
		t.Fatalf("delivery log of the user %+v: no 410 of partner gone", log)
	}
	rs, err := e.led.Recipients(e.ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Partner == "gone" && r.Holds {
			t.Fatalf("recipients %+v: the partner that refused the data is listed as holding it", rs)
		}
	}
}
