package app

import (
	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/auth"
)

// demoOwners are the owners of the demo keys.
var demoOwners = map[auth.Role]string{
	auth.Marketer:  "adv-demo",
	auth.Publisher: "pub-demo",
	auth.Partner:   "partner-demo",
}

const demoHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>adsyn demo publisher</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}</style></head>
<body>
<h1>Handy services weekly</h1>
<p>This page is a sample publisher. It fires the adsyn tracking pixel on load:
<code>/p.gif?site=demo-site&amp;c=home-repair</code>. Each load adds one event to the
<code>ADSYN_EVENTS</code> stream.</p>
<p>Find a plumber, a tutor or a designer near you.</p>
<img id="adsyn-pixel" alt="" width="1" height="1" src="/p.gif?site=demo-site&amp;c=home-repair,plumbing">
<script>
navigator.sendBeacon && document.addEventListener("visibilitychange", function () {
  if (document.visibilityState === "hidden") navigator.sendBeacon("/p?site=demo-site&e=custom&n=page-hidden");
});
</script>
</body></html>`

func demoPage(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBodyString(demoHTML)
}
