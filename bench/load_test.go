package bench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestEveryAnswerIsTimed holds that each answered request of both phases
// lands in the latency histogram, whichever way a worker ends, and that a
// phase reports the CPU time it took.
func TestEveryAnswerIsTimed(t *testing.T) {
	c, err := StartCeiling(Answer(200, "text/plain", []byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := &Load{Addr: c.Addr(), Conns: 4, Request: func(_ uint64, req *fasthttp.Request) { req.SetRequestURI("/x") }}
	var seq atomic.Uint64
	for _, p := range []Phase{
		l.Fixed(context.Background(), 300*time.Millisecond, 2000, &seq),
		l.Saturate(context.Background(), 300*time.Millisecond, &seq),
	} {
		if p.Ops == 0 || p.Hist.TotalCount() != p.Ops || p.Errors != 0 {
			t.Errorf("ops %d, timed %d, errors %d", p.Ops, p.Hist.TotalCount(), p.Errors)
		}
		// Serving and sending requests costs this process CPU time.
		if p.CPU <= 0 || p.CPUPerOp() <= 0 {
			t.Errorf("%d requests, CPU %v (%v µs per request)", p.Ops, p.CPU, p.CPUPerOp())
		}
	}
	if got := l.Answered.Load(); got == 0 {
		t.Error("answers not counted")
	}
}
