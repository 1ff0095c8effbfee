package app

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/privacy"
	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/segments"
	"github.com/adsyn/adsyn/syndication"
)

// Audit scans everything stored for breaches of P1, P2 and P6 with the
// choke point's own rules: the events, the visitor records, every profile
// revision and the views partners get of it, the pull feed, the delivery
// log and the dead letters. Each owner reads its own stream or bucket; the
// checks are privacy's. It prints each finding with where it is, then a
// one-line summary, and returns the number of findings.
//
// With cfg.NATSURLs empty it starts the embedded server on cfg.DataDir, so
// the adsyn that owns that directory must be stopped; else it reads the
// running cluster.
func Audit(ctx context.Context, cfg config.Config, out io.Writer) (int, error) {
	if cfg.NATSURLs == "" {
		cfg.NATSListen = "127.0.0.1:0" // reach nothing but this process
	}
	a, err := New(cfg, nil, io.Discard)
	if err != nil {
		return 0, err
	}
	if err := a.startNATS(ctx); err != nil {
		return 0, err
	}
	defer func() {
		a.conn.Close()
		if a.embedded != nil {
			a.embedded.Shutdown()
		}
	}()
	aud, err := privacy.NewAuditor(a.privacy())
	if err != nil {
		return 0, err
	}
	js := a.conn.JS
	for _, s := range []string{bus.StreamEvents, "partner views", syndication.StreamFeed, bus.KVStream(bus.BucketSyndState), syndication.StreamLog, bus.StreamDeadMail} {
		aud.Count(s, 0) // named in the summary even when empty
	}

	if _, err := bus.ReadEvents(ctx, js, 1, func(seq uint64, e *event.Event) error {
		aud.Count(bus.StreamEvents, 1)
		aud.Event(bus.StreamEvents, "seq "+strconv.FormatUint(seq, 10)+" event "+e.ID.String(), e)
		return nil
	}); err != nil {
		return 0, err
	}
	segStore := ""
	n, err := segments.Scan(ctx, js, func(store, key, field, text string) error {
		segStore = store
		aud.Signal(store, key, field, text)
		return nil
	})
	if err != nil {
		return 0, err
	}
	if segStore != "" {
		aud.Count(segStore, n)
	}
	if a.ring, err = a.keyring(); err != nil {
		return 0, err
	}
	reader, err := profiles.NewReader(ctx, js, a.ring)
	if err != nil {
		return 0, err
	}
	newest := map[string]*profiles.Profile{}
	if _, err := profiles.Scan(ctx, js, reader, func(store, key string, p *profiles.Profile, raw []byte) error {
		aud.Count(store, 1)
		if p == nil {
			aud.Record(store, key, "(undecodable)", string(raw))
			return nil
		}
		p.Texts(func(field, text string) { aud.Record(store, key, field, text) })
		newest[p.ID] = p
		return nil
	}); err != nil {
		return 0, err
	}
	ps := make([]*profiles.Profile, 0, len(newest))
	for _, p := range newest {
		ps = append(ps, p)
	}
	if err := syndication.Views(ctx, js, a.apiURL(), ps, func(partner, user string, view []byte) error {
		aud.Count("partner views", 1)
		aud.JSON("partner views", partner+"/"+user, view, syndication.IDFields...)
		return nil
	}); err != nil {
		return 0, err
	}
	if _, err := syndication.Scan(ctx, js, func(store, key string, data []byte) error {
		aud.Count(store, 1)
		aud.JSON(store, key, data, syndication.IDFields...)
		return nil
	}); err != nil {
		return 0, err
	}
	found := aud.Findings()
	for _, f := range found {
		fmt.Fprintln(out, f)
	}
	if len(found) > 0 {
		fmt.Fprintf(out, "audit: %d findings; scanned %s\n", len(found), aud.Summary())
	} else {
		fmt.Fprintf(out, "audit: clean; scanned %s\n", aud.Summary())
	}
	return len(found), nil
}
