package adserver

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"
)

// Demo ids, for the lead's --demo keys: the marketer of DemoAdvertiser and
// the publisher of DemoSite.
const (
	DemoAdvertiser = "demo-plumbing"
	DemoPublisher  = "demo-pub"
	DemoSite       = "demo"
)

// svgBanner returns a small generated banner as a data URI: no network.
func svgBanner(w, h int, bg, fg, title, sub string) string {
	fs := min(h/3, w/12)
	svg := fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+
		`<rect width="100%%" height="100%%" rx="6" fill="%s"/>`+
		`<circle cx="%d" cy="%d" r="%d" fill="%s" opacity=".18"/>`+
		`<text x="50%%" y="%d" font-family="sans-serif" font-size="%d" font-weight="700" fill="%s" text-anchor="middle">%s</text>`+
		`<text x="50%%" y="%d" font-family="sans-serif" font-size="%d" fill="%s" text-anchor="middle">%s</text></svg>`,
		w, h, w, h, bg, w-h/2, h/2, h/2, fg, h/2, fs, fg, title, h/2+fs, max(fs*6/10, 9), fg, sub)
	return "data:image/svg+xml," + url.PathEscape(svg)
}

// DemoSeed stores sample advertisers, campaigns, creatives and the publisher
// site DemoSite with two slots ("top" 728x90, "side" 300x250). It is
// idempotent. Landing URLs point at example.com.
func DemoSeed(ctx context.Context, js jetstream.JetStream, opts ...StoreOption) error {
	st, err := NewStore(ctx, js, opts...)
	if err != nil {
		return err
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	advs := []*Advertiser{
		{ID: DemoAdvertiser, Name: "Brightwater Plumbing", Domain: "example.com"},
		{ID: "demo-tutors", Name: "Maths & More Tutoring", Domain: "example.com"},
		{ID: "demo-house", Name: "The Site (house ads)", Domain: "example.com"},
	}
	camps := []*Campaign{
		{ID: "demo-plumbing-repairs", Advertiser: DemoAdvertiser, Name: "Same-day repairs", Start: start,
			Priority: 8, CPM: 2.5, Caps: []FreqCap{{Count: 20, Window: Duration(time.Hour)}},
			Budget: Budget{Unit: Impressions, Daily: 100000}},
		{ID: "demo-tutors-education", Advertiser: "demo-tutors", Name: "Tutoring for education readers", Start: start,
			Priority: 8, CPM: 4, Targeting: Targeting{Categories: List{Include: []string{"education", "household"}}}},
		{ID: "demo-house", Advertiser: "demo-house", Name: "Find a pro (fallback)", Start: start, Priority: 16, CPM: 0},
	}
	crs := []*Creative{
		{ID: "demo-plumbing-300", Advertiser: DemoAdvertiser, Campaign: "demo-plumbing-repairs", Type: Image,
			Sizes: []string{"300x250"}, Landing: "https://example.com/plumbing?utm_source=adsyn",
			Content: Content{Image: svgBanner(300, 250, "#0d3b66", "#e8f1fb", "Brightwater", "Leaks fixed today, from 45 EUR"), Alt: "Brightwater Plumbing"},
			Variants: map[string]Variant{"de": {Content: Content{
				Image: svgBanner(300, 250, "#0d3b66", "#e8f1fb", "Brightwater", "Lecks heute repariert, ab 45 EUR"), Alt: "Brightwater Sanitär"}}}},
		{ID: "demo-plumbing-728", Advertiser: DemoAdvertiser, Campaign: "demo-plumbing-repairs", Type: Image,
			Sizes: []string{"728x90"}, Landing: "https://example.com/plumbing?utm_source=adsyn",
			Content: Content{Image: svgBanner(728, 90, "#0d3b66", "#e8f1fb", "Brightwater Plumbing", "Leaks fixed today, from 45 EUR"), Alt: "Brightwater Plumbing"}},
		{ID: "demo-tutors-300", Advertiser: "demo-tutors", Campaign: "demo-tutors-education", Type: HTML,
			Sizes: []string{"300x250"}, Landing: "https://example.com/tutoring",
			Content: Content{HTML: `<a href="` + ClickMacro + `" target="_blank" rel="noopener" style="display:flex;flex-direction:column;` +
				`justify-content:center;align-items:center;width:300px;height:250px;background:linear-gradient(135deg,#0b5fff,#00b3a4);` +
				`color:#fff;font:700 24px sans-serif;border-radius:6px">Maths &amp; More<small style="font-weight:400;font-size:14px;margin-top:8px">` +
				`A tutor near you, first lesson free</small></a>`}},
		{ID: "demo-house-300", Advertiser: "demo-house", Campaign: "demo-house", Type: Image,
			Sizes: []string{"300x250"}, Landing: "https://example.com/find-a-pro",
			Content: Content{Image: svgBanner(300, 250, "#eef2f7", "#1d2b3a", "Find a pro", "Plumbers, tutors, movers near you"), Alt: "Find a pro"}},
		{ID: "demo-house-728", Advertiser: "demo-house", Campaign: "demo-house", Type: Image,
			Sizes: []string{"728x90"}, Landing: "https://example.com/find-a-pro",
			Content: Content{Image: svgBanner(728, 90, "#eef2f7", "#1d2b3a", "Find a pro", "Plumbers, tutors, movers near you"), Alt: "Find a pro"}},
	}
	site := &Site{ID: DemoSite, Publisher: DemoPublisher, Name: "Home & Hands", Domain: "localhost", Domains: []string{"localhost"},
		Categories: []string{"home"},
		Slots: []Slot{
			{ID: "top", Name: "Leaderboard", Sizes: []string{"728x90"}},
			{ID: "side", Name: "Sidebar", Sizes: []string{"300x250"}},
		}}
	for _, a := range advs {
		if err := st.PutAdvertiser(ctx, a); err != nil {
			return err
		}
	}
	for _, c := range camps {
		if err := st.PutCampaign(ctx, c); err != nil {
			return err
		}
	}
	for _, cr := range crs {
		if err := st.PutCreative(ctx, cr); err != nil {
			return err
		}
	}
	return st.PutSite(ctx, site)
}

const demoPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Home &amp; Hands: an adsyn publisher page</title>
<style>
body{margin:0;font:16px/1.6 Georgia,serif;color:#222;background:#fafafa}
header{background:#1d2b3a;color:#fff;padding:14px 24px;font:700 22px system-ui,sans-serif}
.top{display:flex;justify-content:center;padding:12px 0;background:#fff;border-bottom:1px solid #eee;min-height:90px}
main{display:flex;gap:32px;max-width:1040px;margin:24px auto;padding:0 16px}
article{flex:1}aside{width:300px;min-height:250px}
.note{font:13px system-ui,sans-serif;color:#666;border-left:3px solid #0b5fff;padding-left:10px}
</style></head><body>
<header>Home &amp; Hands</header>
<div class="top"><div data-adsyn-site="demo" data-adsyn-slot="top" data-adsyn-cats="home"></div></div>
<main><article>
<h1>Five questions to ask before you hire a plumber</h1>
<p>This is a publisher page served by the adsyn edge at <code>/demo</code>. The two boxes are ad slots of the
site <code>demo</code>: the leaderboard above and the sidebar on the right. Each is filled by <code>/tag.js</code>,
which asks <code>/ad</code> for the best eligible ad and shows it in a sandboxed iframe.</p>
<p>Click an ad: the click goes through <code>/click</code>, which checks its signed token, counts it and redirects to
the advertiser. When at least half an ad has been in view for one second, the tag sends a viewable-impression beacon
to <code>/imp</code>.</p>
<p class="note">Explain any decision with an admin key: <code>GET /v1/explain?site=demo&amp;slot=side</code> on the API port.</p>
</article>
<aside><div data-adsyn-site="demo" data-adsyn-slot="side" data-adsyn-cats="education,home"></div></aside></main>
<!--pixel-->
<script async src="/tag.js"></script>
</body></html>
`

// DemoPage answers GET /demo on the edge: a publisher page with two ad
// slots using /tag.js, and the pixel snippet given with WithPixel.
func (e *Edge) DemoPage(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBodyString(strings.Replace(demoPage, "<!--pixel-->", e.cfg.pixel, 1))
}
