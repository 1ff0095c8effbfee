package app

import (
	"context"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/pixel"
)

// wire builds every role's parts and registers their routes.
func (a *App) wire(ctx context.Context) error {
	if a.cfg.Has(config.RoleAPI) {
		a.coreRoutes()
	}
	if a.cfg.Has(config.RoleEdge) {
		px := pixel.New(a.pub, pixel.Options{
			Consent:        a.consentPolicy(),
			Cookies:        a.cookies(),
			TrustedProxies: a.cfg.TrustedProxies,
			IPv4Bits:       a.cfg.IPv4Bits,
			IPv6Bits:       a.cfg.IPv6Bits,
			Metrics:        a.reg,
			Log:            a.log,
		})
		a.routes["/p.gif"] = px.GIF
		a.routes["/p"] = px.Beacon
		a.routes["/.well-known/gpc.json"] = gpcJSON
		a.routes["/healthz"] = func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }
		if a.cfg.Demo {
			a.routes["/demo"] = demoPage
		}
	}
	return nil
}

// gpcJSON is the GPC support resource: adsyn honours Sec-GPC.
func gpcJSON(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"gpc": true, "lastUpdate": "2026-11-25"}`)
}
