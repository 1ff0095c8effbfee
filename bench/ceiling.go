package bench

import (
	"net"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/app"
)

// Ceiling is the edge's fasthttp server (same settings) with a handler that
// only answers the scenario's happy-path response, doing nothing else.
type Ceiling struct {
	ln  net.Listener
	srv *fasthttp.Server
}

// StartCeiling serves answer on a loopback port.
func StartCeiling(answer fasthttp.RequestHandler) (*Ceiling, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := app.NewEdgeServer(answer, nil)
	go srv.Serve(ln)
	return &Ceiling{ln: ln, srv: srv}, nil
}

// Answer returns a handler that writes status, content type, headers
// (name, value pairs) and body.
func Answer(status int, contentType string, body []byte, headers ...string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(status)
		if contentType != "" {
			ctx.SetContentType(contentType)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			ctx.Response.Header.Set(headers[i], headers[i+1])
		}
		ctx.SetBody(body)
	}
}

// Addr is the ceiling's address.
func (c *Ceiling) Addr() string { return c.ln.Addr().String() }

// Close stops it.
func (c *Ceiling) Close() { _ = c.srv.Shutdown() }
