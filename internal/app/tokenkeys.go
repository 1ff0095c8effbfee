package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/adsyn/adsyn/adserver"
	"github.com/adsyn/adsyn/internal/bus"
)

// tokenKeys keeps an edge's click-token keys in step with the deployment's
// set: a rotation reaches every edge through the watch, and the signing key
// switches at the time the set gives, on every edge alike, without restarts.
type tokenKeys struct {
	a     *App
	edge  *adserver.Edge
	mu    sync.Mutex
	set   bus.TokenKeys
	timer *time.Timer // fires at the next switch of the signing key
}

// loadTokenKeys reads the set and returns the edge option that starts with it.
func (a *App) loadTokenKeys(ctx context.Context) (*tokenKeys, adserver.EdgeOption, error) {
	set, _, err := bus.LoadTokenKeys(ctx, a.conn.JS, a.ring)
	if err != nil {
		return nil, nil, err
	}
	sign, keys, err := edgeTokenKeys(set, time.Now())
	if err != nil {
		return nil, nil, err
	}
	return &tokenKeys{a: a, set: set}, adserver.WithTokenKeySet(sign, keys...), nil
}

// follow watches the set for edge until ctx ends.
func (t *tokenKeys) follow(ctx context.Context, edge *adserver.Edge) error {
	t.mu.Lock()
	t.edge = edge
	t.arm()
	t.mu.Unlock()
	context.AfterFunc(ctx, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.timer != nil {
			t.timer.Stop()
		}
	})
	return bus.WatchTokenKeys(ctx, t.a.conn.JS, t.a.ring, t.a.log, func(s bus.TokenKeys) {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.set = s
		t.apply()
	})
}

// apply gives the edge the set as of now and arms the next switch; t.mu is held.
func (t *tokenKeys) apply() {
	sign, keys, err := edgeTokenKeys(t.set, time.Now())
	if err == nil {
		err = t.edge.SetTokenKeys(sign, keys...)
	}
	if err != nil {
		t.a.log.Error("click-token keys changed, and the edge cannot use them; it keeps the ones it has", "err", err)
		return
	}
	t.arm()
}

// arm sets the timer for the set's next switch, if it has one; t.mu is held.
func (t *tokenKeys) arm() {
	if t.timer != nil {
		t.timer.Stop()
	}
	if next, ok := t.set.NextSwitch(time.Now()); ok {
		t.timer = time.AfterFunc(time.Until(next), func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.apply()
			t.a.log.Info("click-token keys: the edge signs with a new key")
		})
	}
}

// edgeTokenKeys is the set as the edge takes it: the key signing at now, and all.
func edgeTokenKeys(set bus.TokenKeys, now time.Time) (byte, []adserver.TokenKey, error) {
	sign, ok := set.Signing(now)
	if !ok {
		return 0, nil, errors.New("app: click-token keys: none signs yet")
	}
	keys := make([]adserver.TokenKey, len(set.Keys))
	for i, k := range set.Keys {
		keys[i] = adserver.TokenKey{ID: k.ID, Key: k.Key}
	}
	return sign.ID, keys, nil
}
