package adserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/adsyn/adsyn/internal/browsertest"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/event"
)

// TestDemoInChromium loads /demo in headless Chromium, sees both slots
// render an ad, clicks one and sees the click counted, and waits for the
// viewable beacon.
func TestDemoInChromium(t *testing.T) {
	srv := bustest.StartServer(t)
	ctx := testCtx(t)
	conn := srv.Connect(t)
	if err := DemoSeed(ctx, conn.JS); err != nil {
		t.Fatal(err)
	}
	cat, err := NewCatalog(ctx, conn.JS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cat.Close)
	pub := &recorder{}
	e, err := NewEdge(ctx, cat, WithTokenKeys(testKey), WithPublisher(pub),
		WithPixel(`<!-- the pixel goes here -->`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "demo in the index", 5*time.Second, func() bool { return cat.Index().sites[DemoSite] != nil })
	base := serveEdge(t, e)

	page := browsertest.Start(t, chromedp.WindowSize(1280, 900),
		chromedp.UserAgent(BenchUserAgent)) // a headless browser is a bot, and bots get no ads
	browsertest.Run(t, page, "open /demo", chromedp.Navigate(base+"/demo"))

	// Both slots get a sandboxed iframe holding the ad.
	browsertest.Wait(t, page, "two ads rendered", 20*time.Second,
		`document.querySelectorAll("iframe[data-adsyn-ad][sandbox]").length === 2`)
	for _, slot := range []string{"top", "side"} {
		ok := browsertest.Run(t, page, "slot "+slot, chromedp.Evaluate[bool](`(function(){var f=document.querySelector("[data-adsyn-slot=`+slot+`] iframe");`+
			`return f.srcdoc.indexOf("/click?t=")>0 && f.getAttribute("sandbox").indexOf("allow-same-origin")<0 && f.offsetWidth>0})()`))
		if !ok {
			t.Fatalf("slot %s: iframe without a click link, sandboxed wrongly, or not laid out", slot)
		}
	}
	// The pixels of the leaderboard are not blank: the ad is drawn.
	// A node can be replaced while the frame settles: a failed shot is tried again.
	waitFor(t, "leaderboard drawn", 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(page, 5*time.Second)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`[data-adsyn-slot=top] iframe`)))
		return err == nil && browsertest.Colorful(t, png)
	})
	if n := len(pub.kinds(event.KindImpression)); n != 2 {
		t.Fatalf("%d impression events, want 2", n)
	}
	// Both ads are in view: a second later the tag sends the viewable beacons.
	waitFor(t, "viewable beacons", 10*time.Second, func() bool { return len(pub.kinds(event.KindViewable)) == 2 })

	// A click in the sidebar ad goes through /click and is counted.
	side := browsertest.Run(t, page, "the sidebar's box", chromedp.Evaluate[struct{ X, Y, W, H float64 }](
		`(function(){var b=document.querySelector("[data-adsyn-slot=side] iframe").getBoundingClientRect();`+
			`return {X:b.x,Y:b.y,W:b.width,H:b.height}})()`))
	if side.W == 0 || side.H == 0 {
		t.Fatalf("sidebar box %+v", side)
	}
	x, y := side.X+side.W/2, side.Y+side.H/2
	browsertest.Run(t, page, "click the sidebar ad", chromedp.Steps(chromedp.MouseEvent(chromedp.MouseMoved, x, y), chromedp.MouseClickXY(x, y)))
	waitFor(t, "click counted", 10*time.Second, func() bool { return len(pub.kinds(event.KindClick)) == 1 })
	if got := counter(e.cfg.metrics, "adsyn_ad_clicks_total"); got != "1" {
		t.Fatalf("click metric %q", got)
	}
}

// TestHTMLSandboxInChromium opens /ad?fmt=html as a page: the marketer's
// script runs, but in an opaque origin, so it cannot set a cookie for the
// edge (such as a forged euconsent-v2).
func TestHTMLSandboxInChromium(t *testing.T) {
	snap := testSnap(camp("c1"))
	cr := snap.Creatives["c1-cr"]
	cr.Type, cr.Variants = HTML, nil
	cr.Content = Content{HTML: `<a href="` + ClickMacro + `">ad</a><script>try{document.cookie="euconsent-v2=forged; path=/";` +
		`document.title="cookie set"}catch(e){document.title="cookie refused"}</script>`}
	env := newEdgeEnv(t, snap)
	page := browsertest.Start(t, chromedp.UserAgent(BenchUserAgent))
	browsertest.Run(t, page, "open /ad?fmt=html", chromedp.Navigate(env.base+"/ad?site=s1&slot=side&fmt=html"))
	browsertest.Wait(t, page, "the creative's script ran", 20*time.Second, `document.title.indexOf("cookie")===0`)
	title := browsertest.Run(t, page, "the title", chromedp.Evaluate[string](`document.title`))
	if title != "cookie refused" {
		t.Errorf("the creative's script says %q", title)
	}
	jar := struct {
		Cookies []*network.Cookie
	}{browsertest.Run(t, page, "the edge's cookies", chromedp.Action[[]*network.Cookie](func(ctx context.Context, _ *chromedp.Target) ([]*network.Cookie, error) {
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{env.base + "/"}})
		return res.Cookies, err
	}))}
	for _, c := range jar.Cookies {
		if c.Name == "euconsent-v2" {
			t.Fatalf("the creative set a cookie for the edge: %s=%s", c.Name, c.Value)
		}
	}
}

// TestTagOnOtherOriginsInChromium embeds the tag in a page of another
// origin, as a publisher does: on a registered domain (localhost) the ad
// comes with credentials in one request; on an unregistered origin
// (127.0.0.1) the credentialed try is refused and the tag asks again
// without cookies. Each page gets its ad, counted once.
func TestTagOnOtherOriginsInChromium(t *testing.T) {
	snap := testSnap(camp("c1"))
	snap.Sites["s1"].Domains = []string{"localhost"}
	env := newEdgeEnv(t, snap, WithConsent(allowAll))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	pages := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body><div data-adsyn-site="s1" data-adsyn-slot="side"></div>`+
			`<script async src="%s/tag.js"></script></body></html>`, env.base)
	})}
	go pages.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { _ = pages.Close() })

	page := browsertest.Start(t, chromedp.UserAgent(BenchUserAgent))
	for i, host := range []string{"localhost", "127.0.0.1"} {
		browsertest.Run(t, page, "open the page on "+host, chromedp.Navigate(fmt.Sprintf("http://%s:%d/", host, port)))
		browsertest.Wait(t, page, "ad rendered on "+host, 20*time.Second, `document.querySelectorAll("iframe[data-adsyn-ad]").length === 1`)
		waitFor(t, "impression", 5*time.Second, func() bool { return len(env.pub.kinds(event.KindImpression)) == i+1 })
	}
	if got := counter(env.reg, `adsyn_ad_requests_total{result="origin_not_registered"}`); got != "1" {
		t.Errorf("credentialed tries refused: %q, want 1 (the unregistered page's)", got)
	}
	if n := len(env.pub.kinds(event.KindImpression)); n != 2 {
		t.Errorf("%d impressions, want one per page", n)
	}
}
