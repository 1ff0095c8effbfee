package adserver

import (
	"bytes"
	"math/rand/v2"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/cookie"
	"github.com/adsyn/adsyn/internal/device"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/ids"
)

// MaxSlots bounds the slots of one /ad request.
const MaxSlots = 8

// Ad answers GET /ad?site=&slot=[&u=visitor][&c=cat1,cat2][&lang=][&url=page]
// [&fmt=json|html][&cred=1] with the chosen ad, or 204 when there is none;
// with slots=a,b,c instead of slot (JSON only, up to MaxSlots) it fills
// every slot of a page in one answer, {"head": ..., "ads": [...]}, whose
// ads share the document head. The consent of the request (WithConsent)
// decides what is used: nothing without contextual consent, no visitor id
// (u or the cookie) without consent to store on device or with the opt-out
// cookie, no segments without consent to personalize (P3). A cross-origin
// request from a page that is not on the site's domains gets no
// credentialed CORS and no visitor id (the tag's credentialed try, cred=1,
// gets a 204). fmt=html is served sandboxed (CSP): the creative runs in an
// opaque origin.
func (e *Edge) Ad(ctx *fasthttp.RequestCtx) {
	defer e.recoverFault(ctx, "ad")
	ctx.Response.Header.SetCanonical(headerCacheControl, noStore)
	ctx.Response.Header.SetCanonical(headerCORP, crossOrigin)
	args := ctx.QueryArgs()
	site, slot, slots := args.Peek("site"), args.Peek("slot"), args.Peek("slots")
	asHTML := string(args.Peek("fmt")) == "html"
	var list [MaxSlots][]byte
	n, ok := 1, ids.Valid(slot)
	if len(slots) > 0 {
		n, ok = splitSlots(slots, &list)
		ok = ok && !asHTML && len(slot) == 0
	}
	if !ids.Valid(site) || !ok {
		e.badReq.Inc()
		e.cors(ctx, nil)
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBodyString("site must be an id, and slot one id or slots up to 8 comma-separated (1-64 of A-Z a-z 0-9 _ -; slots not with fmt=html)\n")
		return
	}
	a := e.pool.Get().(*adReq)
	defer e.pool.Put(a)
	st, ok := e.adRequest(ctx, a, site)
	if !ok {
		return
	}
	if len(slots) > 0 {
		e.fillSlots(ctx, a, &st, list[:n])
		return
	}
	d, card, ok := e.place(ctx, a, &st, slot)
	if !ok {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	switch {
	case d.Doc == nil: // a profile card, rendered now
		a.doc = appendDoc(a.doc[:0], d.Creative.Type, d.Content, d.W, d.H, card, a.click)
	case asHTML:
		a.doc = d.Doc.appendHTML(a.doc[:0], a.click)
	default: // the template goes straight into the JSON; doc holds the click as HTML
		a.doc = appendHTML(a.doc[:0], a.click)
	}
	if asHTML {
		// A marketer's HTML on the edge's origin could set the edge's
		// cookies: the sandbox gives it an opaque origin instead.
		ctx.Response.Header.SetCanonical(headerCSP, htmlCSP)
		ctx.Response.Header.SetCanonical(headerNoSniff, nosniff)
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBody(a.doc)
	} else {
		a.body = appendAdJSON(a.body[:0], a.ev.ID, &d, a.doc, a.click, a.imp, nil)
		ctx.SetContentType("application/json")
		ctx.SetBody(a.body)
	}
	e.served.Inc()
	if st.charged {
		e.publish(&a.ev)
	}
}

// fillSlots answers a page's slots at once: each decided in turn, as if
// asked one after the other (the recent impressions of the first keep a
// campaign from filling every slot), each counted and charged on its own.
func (e *Edge) fillSlots(ctx *fasthttp.RequestCtx, a *adReq, st *adState, slots [][]byte) {
	a.body = append(a.body[:0], `{"head":"`...)
	a.body = append(a.body, jsonDocHead...)
	a.body = append(a.body, `","ads":[`...)
	filled := 0
	for _, slot := range slots {
		d, card, ok := e.place(ctx, a, st, slot)
		if !ok {
			continue
		}
		if d.Doc == nil {
			a.doc = appendDoc(a.doc[:0], d.Creative.Type, d.Content, d.W, d.H, card, a.click)
		} else {
			a.doc = appendHTML(a.doc[:0], a.click)
		}
		if filled > 0 {
			a.body = append(a.body, ',')
		}
		a.body = appendAdJSON(a.body, a.ev.ID, &d, a.doc, a.click, a.imp, slot)
		filled++
		e.served.Inc()
		if st.charged {
			e.publish(&a.ev)
		}
		// The page's next slot sees this impression, with or without an id.
		a.req.Recent = append(a.req.Recent, Impression{Campaign: d.Hash, At: a.req.Now})
	}
	if filled == 0 {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	a.body = append(a.body, "]}"...)
	ctx.SetContentType("application/json")
	ctx.SetBody(a.body)
}

// splitSlots splits a comma-separated list of slot ids; false when one is
// not an id, there are more than MaxSlots, or one repeats.
func splitSlots(s []byte, dst *[MaxSlots][]byte) (int, bool) {
	for n := 0; ; n++ {
		c, rest, more := bytes.Cut(s, []byte{','})
		if n == MaxSlots || !ids.Valid(c) {
			return 0, false
		}
		for _, prev := range dst[:n] {
			if bytes.Equal(prev, c) {
				return 0, false
			}
		}
		dst[n] = c
		if !more {
			return n + 1, true
		}
		s = rest
	}
}

// adState is what one /ad request says of its visitor, for every slot.
type adState struct {
	cs      consent.Set
	visitor []byte // nil without an id or consent to use one
	vhash   uint64
	charged bool // the last placed ad counts (under the visitor's ceiling)
}

// adRequest reads what a request says for every slot: CORS, consent,
// device, the visitor and their record, language, country, categories. It
// answers 204 itself and reports false when there is nothing to serve.
func (e *Edge) adRequest(ctx *fasthttp.RequestCtx, a *adReq, site []byte) (adState, bool) {
	var st adState
	args := ctx.QueryArgs()
	withCookies := e.cors(ctx, site)
	if !withCookies && len(args.Peek("cred")) > 0 {
		// The tag's credentialed try from a page of no registered domain:
		// the browser refuses this answer and the tag asks again without
		// cookies. Deciding now would count the impression twice.
		e.uncredentialed.Inc()
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return st, false
	}
	st.cs = e.cfg.consent(ctx)
	if cookie.OptedOut(ctx) {
		st.cs = withoutPersonal(st.cs) // P3 holds whatever the consent source says
	}
	if !st.cs.Allow(consent.Contextual) {
		e.noConsent.Inc()
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return st, false
	}
	r := &a.req
	*r = Request{
		Now:         e.cfg.now().UnixMilli(),
		Site:        b2s(site),
		Personalize: st.cs.Allow(consent.Personalize) && st.cs.Allow(consent.StoreOnDevice),
	}
	ev := &a.ev
	ev.Reset()
	e.cfg.device(ctx, &ev.Device)
	r.Device = ev.Device.Type
	if r.Device == device.TypeBot && !e.cfg.bots {
		// Crawlers and headless tools would spend advertisers' budgets.
		e.bots.Inc()
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return st, false
	}
	if st.cs.Allow(consent.StoreOnDevice) && withCookies {
		st.visitor = args.Peek("u")
		if len(st.visitor) == 0 {
			st.visitor = ctx.Request.Header.Cookie(cookie.Visitor)
		}
		if !ids.ValidVisitor(st.visitor) {
			st.visitor = nil
		}
	}
	if st.visitor != nil {
		st.vhash = xxhash.Sum64(st.visitor)
		if e.cfg.segments != nil {
			// A copy: the store may keep the key in its cache.
			var known bool
			r.Record, known = e.record(string(st.visitor))
			r.RecordUnknown = !known
		}
		r.Recent = e.recent.get(st.vhash, a.recent[:0])
	}
	if l := args.Peek("lang"); len(l) > 0 {
		r.Lang = device.PrimaryLanguage(l)
	} else {
		r.Lang = device.PrimaryLanguage(ctx.Request.Header.Peek("Accept-Language"))
	}
	r.Country, r.Region = e.cfg.geo.Lookup(e.cfg.clientIP(ctx))
	r.Categories = splitCats(args.Peek("c"), a.cats[:0])
	return st, true
}

// place decides slot's ad and readies its impression event (a.ev) and its
// click and beacon URLs (a.click, a.imp); false when there is none.
func (e *Edge) place(ctx *fasthttp.RequestCtx, a *adReq, st *adState, slot []byte) (Decision, *ProfileCard, bool) {
	r, ev := &a.req, &a.ev
	r.Slot = b2s(slot)
	r.Rand = rand.Uint64()
	d, ok := e.cat.Index().Decide(r)
	if !ok {
		e.empty.Inc()
		return d, nil, false
	}
	var card *ProfileCard
	if d.Creative.Type == Profile {
		c, ok := e.profile(d.Creative.ProfileUser)
		if !ok {
			e.profileGone.Inc()
			return d, nil, false
		}
		card = &c
		if c.URL != "" && checkLanding("", c.URL, true) == nil {
			d.Landing = c.URL
		}
	}
	// Past the visitor's ceiling the ad is answered, and nothing of it counts.
	st.charged = st.visitor == nil || e.ceiling.charge(st.vhash, r.Now)
	if st.charged {
		d.Pace.Charge(d.CPM)
	}
	if st.visitor != nil {
		e.recent.add(st.vhash, Impression{Campaign: d.Hash, At: r.Now})
	}

	ev.ID = event.NewID()
	if !st.charged {
		e.uncharged[visitorCeiling].Inc()
		e.counted.mark(trackedID(ev.ID, event.KindViewable), r.Now, visitorCeiling)
		e.counted.mark(trackedID(ev.ID, event.KindClick), r.Now, visitorCeiling)
	}
	args := ctx.QueryArgs()
	ev.TS = r.Now
	ev.Kind = event.KindImpression
	ev.Site, ev.Slot = r.Site, r.Slot
	if !e.cat.SitePage(r.Site, &ctx.Request.Header) {
		e.foreignPage.Inc() // served, but not the site's to count
		ev.Site = ""
	}
	ev.Campaign, ev.Creative = d.Campaign.ID, d.Creative.ID
	ev.Value = float64(d.CPM) / 1e9 // the price of this impression: CPM (micros) per thousand
	ev.URL = pageURL(args.Peek("url"))
	ev.Categories = append(ev.Categories[:0], r.Categories...)
	ev.Lang, ev.Country = r.Lang, r.Country
	ev.Consent = st.cs
	if st.visitor != nil {
		ev.Visitor = b2s(st.visitor)
	}
	tok := Token{Issued: r.Now / 1000, Imp: ev.ID, Consent: st.cs, Campaign: ev.Campaign, Creative: ev.Creative,
		Site: ev.Site, Slot: ev.Slot, Visitor: ev.Visitor, Landing: d.Landing}
	a.click = e.appendBase(a.click[:0], ctx)
	a.imp = append(append(a.imp[:0], a.click...), "/imp?t="...)
	a.click = append(a.click, "/click?t="...)
	a.click, a.imp = e.sign.Load().AppendPair(a.click, a.imp, &tok)
	return d, card, true
}
