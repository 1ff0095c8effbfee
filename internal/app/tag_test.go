package app_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/browsertest"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
)

// A desktop Chrome: a headless browser's own user agent is a bot's, and bots
// get no ads.
const desktopChrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// bannerPage is a publisher's page on another origin than the edge's, with
// a TCF CMP whose banner is up until the visitor accepts (window.accept),
// and the publisher's embed: a slot, and the tag sending the pageview.
const bannerPage = `<!doctype html><html><head><meta charset="utf-8"><script>
(function(){var ls=[],state={eventStatus:"cmpuishown",gdprApplies:true,tcString:"",cmpStatus:"loaded"};
window.__tcfapi=function(cmd,v,cb,id){if(cmd==="addEventListener"){var l=ls.length;ls.push(cb);
cb(Object.assign({listenerId:l},state),true)}else if(cmd==="removeEventListener"){ls[id]=null;cb(true)}};
window.accept=function(tc){state={eventStatus:"useractioncomplete",gdprApplies:true,tcString:tc,cmpStatus:"loaded"};
document.getElementById("banner").remove();
for(var i=0;i<ls.length;i++)if(ls[i])ls[i](Object.assign({listenerId:i},state),true)}})();
</script></head><body>
<div id="banner" style="position:fixed;bottom:0;background:#eee">We and our partners ask for your consent. <button>Accept</button></div>
<div data-adsyn-site="demo" data-adsyn-slot="side" style="width:300px"></div>
<script async src="%s/tag.js" data-site="demo" data-adsyn-pageview></script>
</body></html>`

// TestConsentBannerThenAds: an EU visitor on a publisher's page (another
// origin) sees the consent banner; while it is up the tag asks for nothing
// and collapses nothing. The visitor accepts after 3 s: the slot fills, and
// the pageview is stored with the consent the TC string gave.
func TestConsentBannerThenAds(t *testing.T) {
	cfg := testConfig(t)
	cfg.Demo = true
	cfg.TCFVendorID = 755
	a, _ := start(t, cfg)
	edge := "http://" + a.EdgeAddr()
	tc, err := consent.Encode(&consent.TCString{
		Version: 2, Created: time.Now(), LastUpdated: time.Now(), CmpID: 7, CmpVersion: 1,
		ConsentLanguage: "EN", VendorListVersion: 100, TcfPolicyVersion: 5, IsServiceSpecific: true,
		PurposesConsent: consent.BitsOf(1, 2, 3, 4, 7), PublisherCC: "DE",
		VendorConsents: consent.Vendors{Ranges: []consent.Range{{Start: 755, End: 755}}},
	})
	if err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pages := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, bannerPage, edge)
	})}
	go pages.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { _ = pages.Close() })
	// The demo site's domain is localhost; the edge is on 127.0.0.1.
	pageURL := fmt.Sprintf("http://localhost:%d/", ln.Addr().(*net.TCPAddr).Port)

	page := browsertest.Start(t, chromedp.WindowSize(1024, 800), chromedp.UserAgent(desktopChrome))
	browsertest.Run(t, page, "open the publisher's page", chromedp.Navigate(pageURL))
	browsertest.Wait(t, page, "the tag loaded", 20*time.Second, `typeof window.adsyn==="object"&&typeof window.adsyn.refresh==="function"`)
	time.Sleep(3 * time.Second) // the visitor reads the banner
	slot := browsertest.Run(t, page, "the slot while the banner is up", chromedp.Evaluate[string](
		`(function(){var s=document.querySelector("[data-adsyn-slot=side]");return (s.getAttribute("data-adsyn-done")||"waiting")+","+s.style.display+","+s.querySelectorAll("iframe").length})()`))
	if slot != "waiting,,0" {
		t.Fatalf("before the choice the slot is %q, want it waiting, shown, empty", slot)
	}
	if n := countEvents(t, a.Conn().JS, func(e *event.Event) bool { return e.Site == "demo" }); n != 0 {
		t.Fatalf("%d events before the choice", n)
	}

	browsertest.Run(t, page, "accept", chromedp.Evaluate[any](fmt.Sprintf("window.accept(%q)", tc)))
	browsertest.Wait(t, page, "the ad after the choice", 20*time.Second,
		`document.querySelectorAll("[data-adsyn-slot=side] iframe[data-adsyn-ad][sandbox]").length===1`)

	var pv, imp *event.Event
	waitFor(t, 20*time.Second, "the pageview and the impression stored", func() bool {
		pv, imp = nil, nil
		countEvents(t, a.Conn().JS, func(e *event.Event) bool {
			c := *e
			switch {
			case e.Site == "demo" && e.Kind == event.KindPageview:
				pv = &c
			case e.Site == "demo" && e.Kind == event.KindImpression:
				imp = &c
			}
			return false
		})
		return pv != nil && imp != nil
	})
	if !pv.Consent.Allow(consent.Personalize) || !imp.Consent.Allow(consent.Personalize) {
		t.Errorf("consent not carried: pageview %v, impression %v", pv.Consent, imp.Consent)
	}
	if pv.URL != pageURL {
		t.Errorf("pageview of %q, want %q", pv.URL, pageURL)
	}
	t.Logf("banner up 3 s: no request; accepted: ad %s shown, pageview and impression stored with consent %v", imp.Creative, pv.Consent)
}

// countEvents reads every stored event and counts those match accepts.
func countEvents(t *testing.T, js jetstream.JetStream, match func(*event.Event) bool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	if _, err := bus.ReadEvents(ctx, js, 1, func(_ uint64, e *event.Event) error {
		if match(e) {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}
