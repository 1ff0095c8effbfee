package adserver

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/cookie"
	"github.com/adsyn/adsyn/internal/event"
)

// Click answers GET /click?t=TOKEN: a valid click token is counted and
// redirected (302) to the landing URL it carries, and nowhere else. A
// malformed, forged or altered token gets 400 and no redirect. An authentic
// token past its lifetime still redirects, uncounted.
func (e *Edge) Click(ctx *fasthttp.RequestCtx) {
	defer e.recoverFault(ctx, "click")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	t, err := e.sign.Load().Parse(ctx.QueryArgs().Peek("t"), TokenClick)
	if err == nil && checkLanding("", t.Landing, true) != nil {
		err = ErrBadToken // signed by us yet not http(s): never follow it
	}
	if err != nil {
		e.badTokens.Inc()
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBodyString("bad click token\n")
		return
	}
	if e.track(ctx, &t, event.KindClick) {
		e.clicks.Inc()
	}
	ctx.Response.Header.Set("Location", t.Landing)
	ctx.Response.Header.Set("Referrer-Policy", "no-referrer-when-downgrade")
	ctx.SetStatusCode(fasthttp.StatusFound)
}

// Imp answers GET (or POST) /imp?t=TOKEN, the tag's viewable-impression
// beacon: a valid token is recorded as a viewable event; the answer is 204
// either way, except 400 for a bad token.
func (e *Edge) Imp(ctx *fasthttp.RequestCtx) {
	defer e.recoverFault(ctx, "imp")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.SetCanonical(headerCORP, crossOrigin) // a no-cors beacon from any page
	t, err := e.sign.Load().Parse(ctx.QueryArgs().Peek("t"), TokenImpression)
	if err != nil {
		e.badTokens.Inc()
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		return
	}
	if e.track(ctx, &t, event.KindViewable) {
		e.viewables.Inc()
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// tokenSkew is how far in the future a token's issue time may be (clock skew between edges).
const tokenSkew = 5 * time.Minute

// trackedID is the id of the kind's event of one ad answer: derived from
// the impression's, so each ad answer has one viewable and one click.
func trackedID(imp event.ID, kind event.Kind) event.ID {
	imp[15] ^= byte(kind)
	return imp
}

// track publishes the event of an authentic token, unless it expired or
// this ad answer's event of that kind was counted before (a replay, at any
// time within the token's lifetime) or was over the visitor's ceiling. An
// opt-out (cookie or GPC) on this request drops the token's visitor id.
func (e *Edge) track(ctx *fasthttp.RequestCtx, t *Token, kind event.Kind) bool {
	now := e.cfg.now()
	if age := now.Unix() - t.Issued; age > int64(e.cfg.tokenTTL.Seconds()) || age < -int64(tokenSkew.Seconds()) {
		e.expired.Inc()
		return false
	}
	id := trackedID(t.Imp, kind)
	if why := e.counted.first(id, now.UnixMilli()); why != charged {
		e.uncharged[why].Inc()
		return false
	}
	ev := &event.Event{
		ID: id, TS: now.UnixMilli(), Kind: kind,
		Visitor: t.Visitor, Site: t.Site, Slot: t.Slot, Campaign: t.Campaign, Creative: t.Creative,
		Consent: t.Consent,
	}
	if cookie.OptedOut(ctx) || consent.GPC(ctx.Request.Header.Peek(consent.GPCHeader)) {
		// Opted out since the ad was served: the token's visitor id is not used.
		ev.Visitor, ev.Consent = "", withoutPersonal(ev.Consent)
	}
	e.cfg.device(ctx, &ev.Device)
	ev.Country, _ = e.cfg.geo.Lookup(e.cfg.clientIP(ctx))
	e.publish(ev)
	return true
}
