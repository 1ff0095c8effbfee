package adserver

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/profiles"
)

// TestProfileSourceCards: profile creatives read real profiles from
// adsyn_profiles. A user who allows advertising use shows their public
// fields and never their contact details (P2); a user who does not, or
// withdraws, shows no ad.
func TestProfileSourceCards(t *testing.T) {
	conn := bustest.Start(t)
	ctx := testCtx(t)
	ring, err := keyring.Parse(keyring.NewKeyLine(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	store, err := profiles.NewStore(ctx, conn.JS, ring)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := profiles.NewReader(ctx, conn.JS, ring)
	if err != nil {
		t.Fatal(err)
	}
	create := func(body string) string {
		var pt profiles.Patch
		if err := json.Unmarshal([]byte(body), &pt); err != nil {
			t.Fatal(err)
		}
		p, err := store.Create(ctx, &pt, "test")
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	anna := create(`{"name":"Anna Petrova","email":"anna@example.org","phone":"+7 495 123-45-67","city":"Moscow",
	  "competence":["plumbing","heating"],"price":{"amount":"40","currency":"EUR"},
	  "visibility":{"name":"public","competence":"public","price":"public"},
	  "consents":{"ad_profile":true},"consent_source":"test"}`)
	boris := create(`{"name":"Boris Ivanov","email":"boris@example.org","visibility":{"name":"public"},
	  "consents":{"ad_profile":false},"consent_source":"test"}`)

	snap := testSnap(camp("c1"))
	cr := snap.Creatives["c1-cr"]
	cr.Type, cr.ProfileUser, cr.Variants = Profile, anna, nil
	env := newEdgeEnv(t, snap, WithProfileSource(reader, "https://api.example/"))
	code, ad := env.ad(t, "site=s1&slot=side")
	if code != 200 || ad.Type != "profile" || !strings.Contains(ad.HTML, "Anna Petrova") || !strings.Contains(ad.HTML, "plumbing, heating") ||
		!strings.Contains(ad.HTML, "40 EUR") {
		t.Fatalf("%d %+v", code, ad)
	}
	for _, secret := range []string{"anna@example.org", "123-45-67", "4951234567", "Moscow"} {
		if strings.Contains(ad.HTML, secret) {
			t.Fatalf("the card shows %q (P2, or a field not public)", secret)
		}
	}
	if res, _ := get(t, ad.Click); res.Header.Get("Location") != "https://api.example/v1/profiles/"+anna {
		t.Fatalf("profile click goes to %q", res.Header.Get("Location"))
	}

	for name, user := range map[string]string{"no consent to advertising use": boris, "unknown user": "nobody", "not an id": "a.b"} {
		cr.ProfileUser = user
		env := newEdgeEnv(t, snap, WithProfileSource(reader, "https://api.example"))
		if code, _ := env.ad(t, "site=s1&slot=side"); code != 204 {
			t.Errorf("%s: %d, want 204", name, code)
		}
	}
	if _, err := NewEdge(ctx, staticCatalog(Build(snap, t0, nil)), WithTokenKeys(testKey), WithProfileSource(reader, "javascript:alert(1)")); err == nil {
		t.Error("a profile URL that is no http(s) origin was accepted")
	}
}
