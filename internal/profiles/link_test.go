package profiles_test

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/profiles"
)

// TestLinkNeedsProofFromTheBrowser: a browser is linked to an account only
// through a fresh, genuine, single-use token opened in that browser, whose
// own cookie names it (P4).
func TestLinkNeedsProofFromTheBrowser(t *testing.T) {
	var skew atomic.Int64 // the clock the test moves
	ctx, _, keys, edgeStore, c := startAPI(t, profiles.WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
	admin, _, _ := keys.Create(ctx, auth.Admin, "", "root")
	user, key := c.register(admin, `{"name":"Linda","consents":{"link_visitor":true}}`)
	other, otherKey := c.register(admin, `{"name":"Otto","consents":{"link_visitor":true}}`)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cookie := func(ctx *fasthttp.RequestCtx) (string, bool) {
		id := string(ctx.Request.Header.Cookie("uid"))
		return id, id != ""
	}
	srv := &fasthttp.Server{Handler: profiles.EdgeLink(edgeStore, cookie, nil)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	open := func(token, uid string, extra ...string) (int, string) {
		t.Helper()
		req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(res)
		req.SetRequestURI("http://" + ln.Addr().String() + "/link?t=" + token + strings.Join(extra, ""))
		if uid != "" {
			req.Header.SetCookie("uid", uid)
		}
		if err := fasthttp.DoTimeout(req, res, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode(), string(res.Body())
	}
	issue := func(id, key string) string {
		t.Helper()
		code, body := c.do("POST", "/v1/users/"+id+"/link", key, nil)
		var l struct{ Token string }
		if err := json.Unmarshal([]byte(body), &l); code != 201 || err != nil {
			t.Fatalf("link token: %d %s", code, body)
		}
		return l.Token
	}
	linked := func(id string) string {
		t.Helper()
		p, err := edgeStore.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return p.LinkedVisitor
	}

	if code, _ := c.do("POST", "/v1/users/"+user.ID+"/link", otherKey, nil); code != 403 {
		t.Errorf("a token for another user's account: %d", code)
	}
	token := issue(user.ID, key)
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if strings.Contains(token, user.ID) || strings.Contains(string(raw), user.ID) {
		t.Errorf("the token shows the user id: %s", token)
	}

	// Forgeries: a changed signature, a changed body, another user's token
	// with this one's signature. Nothing is linked.
	head, sig, _ := strings.Cut(token, ".")
	otherToken := issue(other.ID, otherKey)
	oHead, _, _ := strings.Cut(otherToken, ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[5] == 'A' {
			b[5] = 'B'
		} else {
			b[5] = 'A'
		}
		return string(b)
	}
	for _, forged := range []string{head + "." + flip(sig), flip(head) + "." + sig, oHead + "." + sig, "garbage", strings.Repeat("A", 600)} {
		if code, body := open(forged, "Browser1Browser1Brows1"); code != 400 || !strings.Contains(body, "invalid_token") {
			t.Errorf("forged token %.20s…: %d %s", forged, code, body)
		}
	}
	// No cookie, and a visitor id in a parameter: nothing linked, the token
	// is not spent.
	if code, body := open(token, "", "&uid=Attacker1Attacker1At&visitor=Attacker1Attacker1At"); code != 409 || !strings.Contains(body, "no_cookie") {
		t.Errorf("without a cookie: %d %s", code, body)
	}
	if v := linked(user.ID); v != "" {
		t.Fatalf("linked %q without proof", v)
	}
	// The browser's own cookie links it.
	if code, body := open(token, "Browser1Browser1Brows1"); code != 200 || !strings.Contains(body, `"linked":true`) {
		t.Fatalf("link: %d %s", code, body)
	}
	if v := linked(user.ID); v != "Browser1Browser1Brows1" {
		t.Fatalf("linked %q", v)
	}
	// Replay from another browser: refused, the first link stays.
	if code, body := open(token, "Browser2Browser2Brows2"); code != 410 || !strings.Contains(body, "token_expired") {
		t.Errorf("replay: %d %s", code, body)
	}
	if v := linked(user.ID); v != "Browser1Browser1Brows1" {
		t.Errorf("replay changed the link to %q", v)
	}
	// A newer token replaces an older one; an expired one links nothing.
	old := issue(user.ID, key)
	fresh := issue(user.ID, key)
	if code, _ := open(old, "Browser3Browser3Brows3"); code != 410 {
		t.Errorf("a replaced token: %d", code)
	}
	skew.Store(int64(profiles.LinkTTL + time.Second))
	if code, _ := open(fresh, "Browser3Browser3Brows3"); code != 410 {
		t.Errorf("an expired token: %d", code)
	}
	skew.Store(0)
	// Consent withdrawn after the token was issued: nothing linked (and the
	// withdrawal unlinked the first browser).
	fresh = issue(other.ID, otherKey)
	if code, body := c.do("PATCH", "/v1/users/"+other.ID, otherKey, []byte(`{"consents":{"link_visitor":false}}`)); code != 200 {
		t.Fatalf("withdraw: %d %s", code, body)
	}
	if code, _ := open(fresh, "Browser4Browser4Brows4"); code != 410 {
		t.Errorf("a token after withdrawal: %d", code)
	}
	if v := linked(other.ID); v != "" {
		t.Errorf("linked %q after withdrawal", v)
	}
	if code, _ := c.do("POST", "/v1/users/"+other.ID+"/link", otherKey, nil); code != 409 {
		t.Errorf("a token without consent: %d", code)
	}
}
