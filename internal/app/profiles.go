package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/cookie"
	"github.com/adsyn/adsyn/internal/demo"
	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/pixel"
	"github.com/adsyn/adsyn/syndication"
)

// keyring loads the master keyring (contact fields, shared secrets, webhook
// secrets), making a key file at first start.
func (a *App) keyring() (*keyring.Keyring, error) {
	path := a.cfg.ProfileKeys
	if path == "" {
		path = filepath.Join(a.cfg.DataDir, "profile.keys")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := keyring.GenerateKeyFile(path); err != nil {
				return nil, fmt.Errorf("app: profile keys: %w", err)
			}
			a.log.Warn("made a new key for contact fields at rest; back it up, and give every process the same file (--profile-keys)", "file", path)
		}
	}
	ring, err := keyring.Load(path)
	if err != nil {
		return nil, fmt.Errorf("--profile-keys: %w", err)
	}
	return ring, nil
}

func (a *App) apiURL() string {
	if a.cfg.APIURL != "" {
		return strings.TrimRight(a.cfg.APIURL, "/")
	}
	if a.apiLn != nil {
		return "http://" + loopbackIfAny(a.apiLn.Addr().String())
	}
	return "http://" + a.cfg.APIAddr
}

// loopbackIfAny turns a wildcard listen address into one a local client can dial.
func loopbackIfAny(addr string) string {
	for _, any := range []string{"[::]:", "0.0.0.0:", ":"} {
		if strings.HasPrefix(addr, any) {
			return "127.0.0.1:" + strings.TrimPrefix(addr, any)
		}
	}
	return addr
}

// wireProfiles builds the user profiles, the partner registry and ledger
// (api, syndication), starts the syndication worker, and gives the edge a
// reader of the public profiles for profile creatives.
func (a *App) wireProfiles(ctx context.Context) error {
	api, synd := a.cfg.Has(config.RoleAPI), a.cfg.Has(config.RoleSyndication)
	if !api && !synd && !a.cfg.Has(config.RoleEdge) {
		return nil
	}
	reader, err := profiles.NewReader(ctx, a.conn.JS, a.ring)
	if err != nil {
		return err
	}
	a.profileReader = reader
	if !api && !synd {
		return nil
	}
	// Registry and workers agree on these: the registry creates the lanes'
	// consumers too.
	shared := []syndication.SharedOption{syndication.WithLogger(a.log), syndication.WithKeyring(a.ring), a.privatePartners(), syndication.WithProfiles(reader)}
	if a.cfg.Takeover > 0 {
		shared = append(shared, syndication.WithTakeover(a.cfg.Takeover))
	}
	regOpts := []syndication.RegistryOption{syndication.WithReplicas(a.cfg.Replicas)}
	for _, o := range shared {
		regOpts = append(regOpts, o)
	}
	reg, err := syndication.NewRegistry(ctx, a.conn.JS, regOpts...)
	if err != nil {
		return err
	}
	led, err := syndication.NewLedger(ctx, a.conn.JS, reg)
	if err != nil {
		return err
	}
	if synd {
		workerOpts := []syndication.WorkerOption{syndication.WithMetrics(a.reg), syndication.WithPublicURL(a.apiURL())}
		for _, o := range shared {
			workerOpts = append(workerOpts, o)
		}
		w, err := syndication.NewWorker(ctx, a.conn.JS, reg, led, workerOpts...)
		if err != nil {
			return err
		}
		a.startWorker("syndication worker", w.Run)
	}
	if !api {
		return nil
	}
	store, err := profiles.NewStore(ctx, a.conn.JS, a.ring, profiles.WithLogger(a.log), profiles.WithMetrics(a.reg), profiles.WithRecipients(led.Recipients), profiles.WithVisitors(a.visitors))
	if err != nil {
		return err
	}
	a.profiles = store
	profiles.NewHandler(store, a.keys, a.log).Routes(a.mux)
	if a.cfg.Has(config.RoleEdge) {
		// Linking happens where the browser's cookie is: on the edge.
		a.routes["/link"] = profiles.EdgeLink(store, visitorCookie, a.log)
	}
	syndication.NewHandler(reg, led, a.keys, a.log).Routes(a.mux)
	if a.cfg.Demo {
		d, err := syndication.DemoSetup(ctx, reg, a.apiURL(), a.log)
		if err != nil {
			return err
		}
		a.mux.Handle("/demo/partner", d)
		a.mux.Handle("/demo/partner/", d)
		if err := demo.Users(ctx, store, a.log); err != nil {
			return err
		}
	}
	return nil
}

// visitorCookie reads the browser's own visitor id, as the pixel sets it.
func visitorCookie(ctx *fasthttp.RequestCtx) (string, bool) {
	id := ctx.Request.Header.Cookie(cookie.Visitor)
	if !pixel.ValidVisitorID(id) {
		return "", false
	}
	return string(id), true
}

func (a *App) privatePartners() syndication.SharedOption {
	// The demo partner receives on the API port, on loopback.
	return syndication.WithPrivatePartners(a.cfg.AllowPrivatePartners || a.cfg.Demo)
}
