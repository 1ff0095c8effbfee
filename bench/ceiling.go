package bench

import (
	"fmt"
	"net"
	"time"

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
			ctx.Response.Header.Add(headers[i], headers[i+1])
		}
		ctx.SetBody(body)
	}
}

// Addr is the ceiling's address.
func (c *Ceiling) Addr() string { return c.ln.Addr().String() }

// Close stops it.
func (c *Ceiling) Close() { _ = c.srv.Shutdown() }

// answer is a response of the target, replayed by a ceiling.
type answer struct {
	status      int
	contentType string
	headers     []string // name, value pairs, Server, Date and Content-Length aside
	body        []byte
}

// handler answers a's bytes.
func (a answer) handler() fasthttp.RequestHandler {
	return Answer(a.status, a.contentType, a.body, a.headers...)
}

// sampleAnswer sends requests to addr until one gets status and returns
// that response, and how many requests it sent.
func sampleAnswer(addr string, request Request, status int) (a answer, sent int64, err error) {
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	for i := uint64(1 << 40); i < 1<<40+1000; i++ {
		req.Reset()
		request(i, req)
		req.SetHost(addr)
		req.URI().SetHost(addr)
		sent++
		if err := fasthttp.DoTimeout(req, res, 5*time.Second); err != nil {
			return answer{}, sent, err
		}
		if res.StatusCode() == status {
			return answerOf(res), sent, nil
		}
	}
	return answer{}, sent, fmt.Errorf("no request of 1000 got a %d from %s", status, addr)
}

func answerOf(res *fasthttp.Response) answer {
	a := answer{status: res.StatusCode(), contentType: string(res.Header.ContentType()), body: append([]byte(nil), res.Body()...)}
	for k, v := range res.Header.All() {
		switch string(k) {
		case fasthttp.HeaderServer, fasthttp.HeaderDate, fasthttp.HeaderContentLength, fasthttp.HeaderContentType, fasthttp.HeaderConnection:
			continue
		}
		a.headers = append(a.headers, string(k), string(v))
	}
	return a
}
