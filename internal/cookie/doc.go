// Package cookie names the edge's cookies and is their one writer: the
// visitor id (pixel), the opt-out and the cookie that deletes the visitor id
// (/optout) get their attributes from one Policy, so a choice made on one
// door is readable on every other, in third-party contexts too.
//
// Nothing from a *fasthttp.RequestCtx outlives a call; writing a cookie
// allocates nothing once the pools are warm.
package cookie
