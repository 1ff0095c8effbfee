package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/event"
)

// events prints the newest events of ADSYN_EVENTS as JSON lines, and
// follows new ones with --follow.
func events(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("adsyn events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config.Default()
	cfg.ConnFlags(fs)
	last := fs.Int("last", 10, "how many of the newest events to print")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := config.ApplyEnv(fs, os.Getenv); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dial, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// Reading needs no more than the reader: the embedded server's
	// read-only user, or the cluster credentials given.
	c, err := app.Dial(dial, cfg, "adsyn events", app.ReadOnly, nil)
	if err != nil {
		return fmt.Errorf("%w (is adsyn serve running?)", err)
	}
	defer c.Close()
	s, err := c.JS.Stream(dial, bus.StreamEvents)
	if err != nil {
		return fmt.Errorf("stream %s: %w (start adsyn serve once to provision it)", bus.StreamEvents, err)
	}
	info, err := s.Info(dial)
	if err != nil {
		return err
	}
	// Messages hold batches, so start a few messages back and print the tail.
	start := uint64(1)
	if back := uint64(*last); info.State.LastSeq > back {
		start = info.State.LastSeq - back + 1
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start})
	if err != nil {
		return err
	}
	var pending []event.Event
	enc := json.NewEncoder(stdout)
	flush := func() {
		if len(pending) > *last {
			pending = pending[len(pending)-*last:]
		}
		for i := range pending {
			_ = enc.Encode(view(&pending[i]))
		}
		pending = pending[:0]
	}
	caughtUp := false
	for ctx.Err() == nil {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			_, _ = event.DecodeBatch(m.Data(), func(e *event.Event) error {
				c := *e
				c.Categories = append([]string(nil), e.Categories...)
				pending = append(pending, c)
				return nil
			})
		}
		if n == 0 && !caughtUp {
			caughtUp = true
			flush()
			if !*follow {
				return nil
			}
		}
		if caughtUp {
			flush()
		}
	}
	return nil
}

// view is an event as people read it.
func view(e *event.Event) map[string]any {
	m := map[string]any{
		"id": e.ID.String(), "time": time.UnixMilli(e.TS).UTC().Format(time.RFC3339Nano), "kind": e.Kind.String(),
		"consent": e.Consent.Names(),
	}
	for k, v := range map[string]string{"visitor": e.Visitor, "user": e.User, "site": e.Site, "slot": e.Slot,
		"campaign": e.Campaign, "creative": e.Creative, "url": e.URL, "referrer": e.Referrer, "query": e.Query,
		"lang": e.Lang, "country": e.Country, "ip": e.IP, "name": e.Name} {
		if v != "" {
			m[k] = v
		}
	}
	if len(e.Categories) > 0 {
		m["categories"] = e.Categories
	}
	if e.Device != (event.Device{}) {
		m["device"] = e.Device
	}
	if e.Value != 0 {
		m["value"] = e.Value
	}
	return m
}
