package bench

import (
	"net"

	"github.com/valyala/fasthttp"
)

// Ceiling is a bare fasthttp server that answers every request with the
// same bytes and status as the scenario's happy path, doing nothing else.
type Ceiling struct {
	ln  net.Listener
	srv *fasthttp.Server
}

// StartCeiling serves body with contentType and status on a loopback port.
func StartCeiling(status int, contentType string, body []byte) (*Ceiling, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetStatusCode(status)
			if contentType != "" {
				ctx.SetContentType(contentType)
			}
			ctx.SetBody(body)
		},
		NoDefaultServerHeader: true,
		ReadBufferSize:        16 << 10,
	}
	go srv.Serve(ln)
	return &Ceiling{ln: ln, srv: srv}, nil
}

// Addr is the ceiling's address.
func (c *Ceiling) Addr() string { return c.ln.Addr().String() }

// Close stops it.
func (c *Ceiling) Close() { _ = c.srv.Shutdown() }
