package segments

import (
	"context"
	"errors"
	"fmt"
	"html"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/cookie"
	"github.com/adsyn/adsyn/internal/metrics"
)

const pageHead = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s</title></head>
<body style="font-family:system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em">
`

// optOutPages are the three answers of /optout, built once: each says what
// was deleted, what is kept and for how long, and how to undo the choice.
type optOutPages struct{ deleted, noVisitor, failed []byte }

func newOptOutPages(retention time.Duration) optOutPages {
	kept := html.EscapeString(duration(retention))
	common := `<p><b>From now on</b> this browser gets no visitor id from us, so nothing new is added to a profile:
it gets ads chosen from the page it is on only, and its visits are counted without an id.</p>
<h2>What we keep</h2>
<p>The events already recorded (page views, ad views and clicks, with a shortened IP address) stay until they
expire, ` + kept + ` after each happened. They carry the old id, which this browser no longer has, so nothing
links them to it now.</p>
<h2>How to undo it</h2>
<p>The choice is an <code>adsyn_optout</code> cookie kept for 13 months. Deleting this site's cookies in your
browser undoes it; it also ends when it expires.</p>
</body></html>
`
	return optOutPages{
		deleted: []byte(fmt.Sprintf(pageHead, "Opted out") + `<h1>You have opted out</h1>
<h2>What we deleted</h2>
<p>The interest profile held under this browser's visitor id (its interest segments, ad frequency counts and
language), and the visitor id cookie itself.</p>
` + common),
		noVisitor: []byte(fmt.Sprintf(pageHead, "Opted out") + `<h1>You have opted out</h1>
<h2>What we deleted</h2>
<p>Nothing: this browser sent us no visitor id, so there was no interest profile to delete.</p>
` + common),
		failed: []byte(fmt.Sprintf(pageHead, "Opt-out incomplete") + `<h1>Opt-out recorded, deletion pending</h1>
<p>This browser will no longer get interest-based ads, but the interest profile held under its visitor id could
not be deleted just now. Please reload this page in a moment.</p>
</body></html>
`),
	}
}

// duration says d in days, or hours when it is not a whole number of days.
func duration(d time.Duration) string {
	if day := 24 * time.Hour; d >= day && d%day == 0 {
		if d == day {
			return "1 day"
		}
		return fmt.Sprintf("%d days", d/day)
	}
	if h := int(d / time.Hour); h > 1 {
		return fmt.Sprintf("%d hours", h)
	}
	return "1 hour"
}

// OptOut returns the edge handler of GET /optout. It sets the opt-out cookie
// and expires the visitor id cookie through cookies (the edge's one cookie
// writer, so the choice is readable on every door), deletes the visitor's
// record through store, and answers a short HTML page saying what was
// deleted and what is kept for how long (retention, the events' lifetime),
// or 204 with ?format=none. If the deletion fails it answers 503 with the
// cookies set, so the person can retry. Nothing from the request outlives
// the handler. Options: WithTimeout, WithLogger, WithMetrics.
func OptOut(store Store, cookies *cookie.Policy, retention time.Duration, opts ...OptOutOption) (fasthttp.RequestHandler, error) {
	if store == nil || cookies == nil {
		return nil, errors.New("segments: opt-out needs a store and a cookie policy")
	}
	if retention <= 0 {
		return nil, fmt.Errorf("segments: opt-out retention %s must be positive", retention)
	}
	o, err := buildOptions(opts, OptOutOption.optOut)
	if err != nil {
		return nil, err
	}
	pages := newOptOutPages(retention)
	const name, help = "adsyn_segments_optouts_total", "Opt-outs at the edge, by outcome."
	m := struct{ deleted, none, failed *metrics.Counter }{
		deleted: o.reg.Counter(name, help, "outcome", "deleted"),
		none:    o.reg.Counter(name, help, "outcome", "no_visitor"),
		failed:  o.reg.Counter(name, help, "outcome", "failed"),
	}
	return func(ctx *fasthttp.RequestCtx) {
		if !ctx.IsGet() && !ctx.IsHead() {
			ctx.Response.Header.Set("Allow", "GET, HEAD")
			ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
			return
		}
		ctx.Response.Header.Set("Cache-Control", "no-store")
		cookies.SetOptOut(ctx)

		page := pages.noVisitor
		if raw := ctx.Request.Header.Cookie(cookie.Visitor); len(raw) > 0 {
			visitor := string(raw) // a copy: the request's bytes are reused
			cookies.DeleteVisitor(ctx)
			if ValidVisitor(visitor) {
				dctx, cancel := context.WithTimeout(context.Background(), o.timeout)
				err := store.Delete(dctx, visitor)
				cancel()
				if err != nil {
					page = nil
					m.failed.Inc()
					o.log.Error("segments: opt-out could not delete the record", "err", err)
				} else {
					page = pages.deleted
					m.deleted.Inc()
				}
			} else {
				m.none.Inc()
			}
		} else {
			m.none.Inc()
		}

		switch {
		case page == nil:
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.Response.Header.Set("Retry-After", "5")
			ctx.SetContentType("text/html; charset=utf-8")
			ctx.SetBody(pages.failed)
		case string(ctx.QueryArgs().Peek("format")) == "none":
			ctx.SetStatusCode(fasthttp.StatusNoContent)
		default:
			ctx.SetContentType("text/html; charset=utf-8")
			ctx.SetBody(page)
		}
	}, nil
}
