package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/pixel"
)

// Options are common to every scenario.
type Options struct {
	Duration time.Duration // saturating time, split into rounds
	Conns    int
	Rounds   int
	Rate     float64 // fixed-rate phase, req/s; 0: half the slower side's throughput
	Target   string  // an adsyn edge to load instead of one started in process
	Trace    string  // a file for an execution trace of the target's first fixed-rate round
	// HeapProfile is where a soak writes heap profiles, with .start and .end.
	HeapProfile string
	NATS        string // with Target, the NATS URL the target uses (ad: seeded there)
	NATSNKey    string // with NATS, the NKey seed file to authenticate with (the edge's DATA/nats-adsyn.nk)
	// Tests shrink the ad scenario; 0 is its full size.
	AdCampaigns, AdVisitors int
	Log                     *slog.Logger
}

func (o *Options) defaults() {
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Conns <= 0 {
		o.Conns = 32
	}
	if o.Rounds <= 0 {
		o.Rounds = 5
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

const benchUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"

// pixelMix is a pixel load: one of 100 pages, every tenth a search, from
// one of 10,000 returning visitors (their cookie sent) or, for
// cookielessPct of the hits, from a browser that sends no cookie (it blocks
// third-party cookies, or it is a first visit).
type pixelMix struct{ cookielessPct uint64 }

func (m pixelMix) name() string {
	if m.cookielessPct == 100 {
		return "100% cookieless"
	}
	return fmt.Sprintf("returning visitors, %d%% cookieless", m.cookielessPct)
}

func (m pixelMix) request(i uint64, req *fasthttp.Request) {
	page := i % 100
	if i%10 == 0 {
		req.SetRequestURI("/p.gif?site=bench-site&e=search&q=plumber&c=home,repair&u=https%3A%2F%2Fpub.example%2Fsearch")
	} else {
		var b [96]byte
		uri := append(b[:0], "/p.gif?site=bench-site&c=home,repair&u=https%3A%2F%2Fpub.example%2Fpage%2F"...)
		uri = strconv.AppendUint(uri, page, 10)
		req.SetRequestURIBytes(uri)
	}
	req.Header.Set("User-Agent", benchUA)
	req.Header.Set("Accept-Language", "ru-RU,ru;q=0.9,en;q=0.8")
	if splitmix(i)%100 < m.cookielessPct {
		return
	}
	var id [pixel.VisitorIDLen]byte
	visitorID(i%10000, &id)
	req.Header.SetCookieBytesKV([]byte(pixel.CookieName), id[:])
}

// visitorID derives a stable, valid visitor id from n.
func visitorID(n uint64, dst *[pixel.VisitorIDLen]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	x := n*0x9E3779B97F4A7C15 + 1
	for i := range dst {
		dst[i] = alphabet[x%64]
		x = x/64 + n*31 + uint64(i)*0xBF58476D1CE4E5B9
	}
}

// startApp runs an in-process adsyn with cfg; stop stops it and keeps its data.
func startApp(ctx context.Context, cfg config.Config, log *slog.Logger) (*app.App, func(), error) {
	a, err := app.New(cfg, log, io.Discard)
	if err != nil {
		return nil, nil, err
	}
	if err := a.Start(ctx); err != nil {
		return nil, nil, err
	}
	return a, func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = a.Stop(stopCtx)
	}, nil
}

// startAdsyn runs an in-process adsyn with the given roles on loopback ports.
func startAdsyn(ctx context.Context, roles []string, log *slog.Logger) (*app.App, func(), error) {
	dir, err := os.MkdirTemp("", "adsyn-bench-")
	if err != nil {
		return nil, nil, err
	}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTPAddr, cfg.APIAddr, cfg.NATSListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Roles = roles
	a, stop, err := startApp(ctx, cfg, log)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return a, func() {
		stop()
		os.RemoveAll(dir)
	}, nil
}

// Pixel loads GET /p.gif twice, with a returning-visitor mix and with 100%
// cookieless hits, each against a bare fasthttp server answering the same
// bytes (the GIF and its headers, and the visitor cookie the edge sets on a
// hit without one), and checks that the stream grew by exactly the number
// of answered requests.
func Pixel(ctx context.Context, o Options, progress io.Writer) ([]Result, error) {
	o.defaults()
	var (
		a     *app.App
		addr  = o.Target
		first uint64
		err   error
	)
	if addr == "" {
		fmt.Fprintln(progress, "pixel: starting adsyn (edge role, embedded NATS)")
		var stop func()
		a, stop, err = startAdsyn(ctx, []string{config.RoleEdge}, o.Log)
		if err != nil {
			return nil, err
		}
		defer stop()
		addr = a.EdgeAddr()
		first, err = lastSeq(ctx, a.Conn())
		if err != nil {
			return nil, err
		}
	} else if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host
	}
	ceil, samples, err := pixelCeiling(addr)
	if err != nil {
		return nil, err
	}
	defer ceil.Close()
	gif := func(res *fasthttp.Response) bool { return res.StatusCode() == 200 && len(res.Body()) == len(pixel.GIF) }
	var results []Result
	var answered int64 = samples
	for _, mix := range []pixelMix{{cookielessPct: 20}, {cookielessPct: 100}} {
		target := &Load{Addr: addr, Conns: o.Conns, Request: mix.request, OK: gif}
		ceiling := &Load{Addr: ceil.Addr(), Conns: o.Conns, Request: mix.request, OK: gif}
		fmt.Fprintf(progress, "pixel (%s): %s in %d rounds, %d connections, against a bare fasthttp ceiling\n", mix.name(), o.Duration, o.Rounds, o.Conns)
		var seq atomic.Uint64
		cmp := Compare(ctx, target, ceiling, o, &seq, progress)
		r := FromComparison("pixel", cmp)
		r.CeilingName = "bare fasthttp, same bytes"
		addCPU(&r, cmp)
		r.Lost = -1
		r.Extra["mix"] = mix.name()
		r.Extra["cookieless_share"] = float64(mix.cookielessPct) / 100
		answered += target.Answered.Load()
		results = append(results, r)
	}
	if a != nil {
		fmt.Fprintln(progress, "pixel: draining and counting stored events")
		stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := a.Publisher().Stop(stopCtx); err != nil {
			return results, err
		}
		stored, err := bus.ReadEvents(stopCtx, a.Conn().JS, first+1, func(uint64, *event.Event) error { return nil })
		if err != nil {
			return results, err
		}
		st := a.Publisher().Stats()
		// Both mixes run on one edge: what was lost is the runs' together.
		for i := range results {
			results[i].Lost = answered - int64(stored)
			results[i].Extra["answered_both_mixes"] = answered
			results[i].Extra["stored_both_mixes"] = stored
			results[i].Extra["dropped"] = st.Dropped
		}
	}
	return results, nil
}

// pixelCeiling samples the edge's answer to a returning visitor and to a
// hit without a cookie, and serves them: the GIF with the edge's headers,
// plus its Set-Cookie when the request has no visitor cookie. samples is
// how many hits the sampling made.
func pixelCeiling(addr string) (c *Ceiling, samples int64, err error) {
	returning, n1, err := sampleAnswer(addr, pixelMix{cookielessPct: 0}.request, fasthttp.StatusOK)
	if err != nil {
		return nil, 0, err
	}
	fresh, n2, err := sampleAnswer(addr, pixelMix{cookielessPct: 100}.request, fasthttp.StatusOK)
	if err != nil {
		return nil, 0, err
	}
	var setCookie []string
	for i := 0; i+1 < len(fresh.headers); i += 2 {
		if fresh.headers[i] == fasthttp.HeaderSetCookie {
			setCookie = append(setCookie, fresh.headers[i+1])
		}
	}
	base := returning.handler()
	c, err = StartCeiling(func(ctx *fasthttp.RequestCtx) {
		base(ctx)
		if len(ctx.Request.Header.Cookie(pixel.CookieName)) == 0 {
			for _, v := range setCookie {
				ctx.Response.Header.Add(fasthttp.HeaderSetCookie, v)
			}
		}
	})
	return c, n1 + n2, err
}

func lastSeq(ctx context.Context, c *bus.Conn) (uint64, error) {
	s, err := c.JS.Stream(ctx, bus.StreamEvents)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}
