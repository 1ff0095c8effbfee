// Package pixel owns the beacon endpoints that external sites embed
// (GET /p.gif, POST /p), the visitor-id cookie, and the turning of a request
// into an event. The cookie's name and attributes come from internal/cookie,
// shared with /ad and /optout; a hit that issues the id marks its event
// NewVisitor, so no visitor record is made until the cookie comes back.
//
// Nothing from a *fasthttp.RequestCtx outlives the handler: events hold
// strings that point into the request and are encoded by the publisher before
// the handler returns. The handler never answers 5xx and never panics; a fault
// is counted and the GIF (or 204) is answered all the same.
package pixel
