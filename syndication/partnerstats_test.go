package syndication_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication"
)

// TestPartnerStats: three users syndicated (the endpoint fails its first
// two answers), one changed, one withdrawn: the partner reads today's
// figures, and no other partner can.
func TestPartnerStats(t *testing.T) {
	a := newAPI(t)
	rc := newReceiver(t, status(http.StatusServiceUnavailable, 2))
	p := a.partner("p1", rc, profiles.FieldName)
	a.worker()
	var ids []string
	for i := range 3 {
		u := a.user(fmt.Sprintf(`{"name":"User %c","consents":{"syndication":true},"visibility":{"name":"public"}}`, 'A'+i))
		ids = append(ids, u.ID)
	}
	eventually(t, 20*time.Second, "three delivered", func() (bool, string) { return converged(rc, a.expected(p.Contract())) })
	a.patch(ids[0], `{"name":"User A2"}`)
	a.patch(ids[1], `{"consents":{"syndication":false}}`)
	eventually(t, 20*time.Second, "the change and the withdrawal", func() (bool, string) { return converged(rc, a.expected(p.Contract())) })

	own, other := a.key(auth.Partner, "p1"), a.key(auth.Partner, "p2")
	var got struct {
		Days []syndication.PartnerDay `json:"days"`
	}
	eventually(t, 10*time.Second, "the day's figures", func() (bool, string) {
		code, body := a.do("GET", "/v1/partners/p1/stats", own, "")
		if code != 200 || json.Unmarshal([]byte(body), &got) != nil || len(got.Days) != 1 {
			return false, body
		}
		d := got.Days[0]
		return d.Delivered == 3 && d.Updates == 1 && d.Deletions == 1, body
	})
	d := got.Days[0]
	if d.Day != time.Now().UTC().Format(time.DateOnly) || d.Retries < 2 || d.Failures != 0 || d.DeadLetters != 0 ||
		d.LagP99MS < d.LagP50MS || d.LagP99MS == 0 {
		t.Errorf("day %+v", d)
	}
	if code, _ := a.do("GET", "/v1/partners/p1/stats", other, ""); code != 403 {
		t.Errorf("another partner reads p1's figures: %d", code)
	}
	if code, _ := a.do("GET", "/v1/partners/p1/stats?from=2026-01-01&to=2026-12-31", own, ""); code != 400 {
		t.Errorf("a year's range: %d", code)
	}
	t.Logf("today: %+v", d)
}
