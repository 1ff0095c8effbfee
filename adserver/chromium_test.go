package adserver

import (
	"testing"
	"time"

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
	waitFor(t, "leaderboard drawn", 10*time.Second, func() bool {
		return browsertest.Colorful(t, browsertest.Run(t, page, "screenshot of the leaderboard",
			chromedp.Screenshot(chromedp.CSS(`[data-adsyn-slot=top] iframe`))))
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
