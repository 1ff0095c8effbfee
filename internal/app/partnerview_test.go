package app_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/adsyn/adsyn/internal/browsertest"
)

// printedKey returns the key serve printed for role at its first start.
func printedKey(t *testing.T, printed, role string) string {
	t.Helper()
	for _, line := range strings.Split(printed, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == role && strings.HasPrefix(f[1], "adsyn_") {
			return f[1]
		}
	}
	t.Fatalf("no %s key printed: %q", role, printed)
	return ""
}

// TestPartnerViewInChromium: the demo partner signs in to the dashboard
// with its key and sees today's deliveries of the demo users' profiles.
func TestPartnerViewInChromium(t *testing.T) {
	cfg := testConfig(t)
	cfg.Demo = true
	a, out := start(t, cfg)
	key := printedKey(t, out.String(), "partner")
	api := "http://" + a.APIAddr()
	poll(t, "the demo profile delivered", func() bool {
		code, body := call(t, "GET", api+"/v1/stats/summary", key, "")
		if code != 200 || !strings.Contains(body, `"partner":"`) {
			t.Fatalf("summary for a partner: %d %s", code, body)
		}
		id := body[strings.Index(body, `"partner":"`)+len(`"partner":"`):]
		id = id[:strings.IndexByte(id, '"')]
		_, st := call(t, "GET", api+"/v1/partners/"+id+"/stats", key, "")
		return strings.Contains(st, `"delivered":1`)
	})
	page := browsertest.Start(t, chromedp.WindowSize(1100, 900))
	browsertest.Run(t, page, "open the dashboard", chromedp.Navigate(api+"/dashboard"))
	browsertest.Wait(t, page, "the sign-in form", 20*time.Second, `!document.getElementById("signin").hidden`)
	browsertest.Run(t, page, "sign in", chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById("key").value = %q; document.getElementById("signin-form").requestSubmit(); true`, key)))
	browsertest.Wait(t, page, "the feed's figures", 20*time.Second, `document.getElementById("feed").dataset.ready`)
	today := time.Now().UTC().Format(time.DateOnly)
	delivered := browsertest.Run(t, page, "today's row", chromedp.Evaluate[string](fmt.Sprintf(
		`(function(){var r=document.querySelector('#tb-feed tr[data-day=%q]');return r?r.children[1].dataset.value:""})()`, today)))
	if delivered != "1" {
		t.Errorf("today's delivered profiles shown: %q, want 1 (the demo's one syndicating user)", delivered)
	}
	if browsertest.Run(t, page, "other views", chromedp.Evaluate[bool](`!document.getElementById("list-campaigns").hidden || !document.getElementById("list-sites").hidden`)) {
		t.Error("a partner sees campaign or site lists")
	}
}
