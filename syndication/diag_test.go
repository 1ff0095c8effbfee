package syndication_test

import (
	"strings"
	"testing"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/syndication"
)

func (e *env) debug(t *testing.T, partner, user string) {
	kv, _ := e.conn.JS.KeyValue(e.ctx, bus.BucketProfiles)
	hist, err := kv.History(e.ctx, user)
	t.Logf("profile history err=%v", err)
	for _, h := range hist {
		t.Logf("  rev %d op %v %.200s", h.Revision(), h.Operation(), h.Value())
	}
	st, _ := e.conn.JS.KeyValue(e.ctx, bus.BucketSyndState)
	if s, err := st.Get(e.ctx, partner+"."+user); err == nil {
		t.Logf("state rev %d %s", s.Revision(), s.Value())
	} else {
		t.Logf("state err %v", err)
	}
	ds, _ := e.led.ForUser(e.ctx, user, 100)
	for _, d := range ds {
		if d.Partner == partner {
			t.Logf("log %+v", d)
		}
	}
	s, _ := e.conn.JS.Stream(e.ctx, syndication.StreamOut)
	info, _ := s.Info(e.ctx)
	t.Logf("out stream msgs %d", info.State.Msgs)
	for name := range s.ConsumerNames(e.ctx).Name() {
		if strings.Contains(name, partner) {
			c, _ := s.Consumer(e.ctx, name)
			ci, _ := c.Info(e.ctx)
			t.Logf("consumer %s pending %d ackpending %d redelivered %d waiting %d", name, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting)
		}
	}
	ks, _ := e.conn.JS.Stream(e.ctx, "KV_adsyn_profiles")
	c, _ := ks.Consumer(e.ctx, "adsyn_synd")
	ci, _ := c.Info(e.ctx)
	t.Logf("change consumer pending %d ackpending %d redelivered %d", ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
}
