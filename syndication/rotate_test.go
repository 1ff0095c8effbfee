package syndication_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication"
)

// A webhook secret rotated with an overlap: deliveries verify under the
// old secret and the new one alike, so the partner switches at its own
// pace; rotated with no overlap, the old secret is refused at once.
func TestSecretRotation(t *testing.T) {
	a := newAPI(t)
	rc := newReceiver(t, ok())
	a.worker()
	p := a.partner("acme", rc, profiles.FieldName)
	u := a.user(`{"name":"Ann","consents":{"syndication":true},"visibility":{"name":"public"}}`)
	want := func() map[string]syndication.View { return a.expected(p.Contract()) }
	eventually(t, 10*time.Second, "the first delivery", func() (bool, string) { return converged(rc, want()) })

	rotate := func(body string) (secret string, until time.Time) {
		t.Helper()
		code, resp := a.do("POST", "/v1/partners/acme/secret", a.admin, body)
		var out struct {
			Secret string    `json:"secret"`
			Until  time.Time `json:"previous_secret_until"`
		}
		if code != 200 || json.Unmarshal([]byte(resp), &out) != nil || !strings.HasPrefix(out.Secret, "whsec_") {
			t.Fatalf("rotate %s: %d %s", body, code, resp)
		}
		// The worker signs with what its registry mirror holds.
		eventually(t, 10*time.Second, "the worker to see the new secret", func() (bool, string) {
			got, _ := a.regs[0].Get("acme")
			return got.Secret == out.Secret, "old secret"
		})
		return out.Secret, out.Until
	}
	deliverUnder := func(secret, name string) {
		t.Helper()
		rc.mu.Lock()
		rc.secret = secret
		rc.mu.Unlock()
		a.patch(u.ID, `{"name":"`+name+`"}`)
		eventually(t, 10*time.Second, "a delivery verified under "+secret[:12], func() (bool, string) { return converged(rc, want()) })
	}

	first := p.Secret
	second, until := rotate(`{"overlap_seconds":3600}`)
	if d := time.Until(until); d < 59*time.Minute || d > time.Hour {
		t.Errorf("previous_secret_until %v: want an hour from now", until)
	}
	deliverUnder(first, "Ann B") // the partner has not switched yet
	deliverUnder(second, "Ann C")
	if code, body := a.do("GET", "/v1/partners/acme", a.admin, ""); code != 200 || strings.Contains(body, "whsec_") || !strings.Contains(body, "previous_secret_until") {
		t.Errorf("GET after the rotation: %d %s", code, body)
	}

	// No overlap: the replaced secret stops signing at once.
	third, until := rotate(`{"overlap_seconds":0}`)
	if !until.IsZero() {
		t.Errorf("previous_secret_until %v after a rotation without overlap", until)
	}
	rc.mu.Lock()
	rc.secret = second
	rc.mu.Unlock()
	a.patch(u.ID, `{"name":"Ann D"}`)
	eventually(t, 10*time.Second, "a delivery refused under the replaced secret", func() (bool, string) {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return len(rc.problems) > 0, "accepted"
	})
	rc.mu.Lock()
	rc.problems = nil // refused as it should be: the partner sees 401s until it switches
	rc.mu.Unlock()
	deliverUnder(third, "Ann E")

	for _, bad := range []string{`{"overlap_seconds":-1}`, `{"overlap_seconds":604801}`, `{"overlap":1}`, `nope`} {
		if code, body := a.do("POST", "/v1/partners/acme/secret", a.admin, bad); code != 400 {
			t.Errorf("rotate %s: %d %s", bad, code, body)
		}
	}
	if code, body := a.do("POST", "/v1/partners/nobody/secret", a.admin, ""); code != 404 {
		t.Errorf("rotate an unknown partner: %d %s", code, body)
	}
	if code, _ := a.do("POST", "/v1/partners/acme/secret", a.key("partner", "acme"), ""); code != 403 {
		t.Errorf("a partner key rotating: %d, want 403", code)
	}
}
