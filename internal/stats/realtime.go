package stats

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/adsyn/adsyn/internal/api"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/stats/audience"
	"github.com/adsyn/adsyn/internal/stats/tally"
)

// The realtime view asks every aggregator, over core NATS, for a site's
// pageviews and visitors of the last minutes; each answers for the events
// it admitted, from memory (tally.Live), and the API merges the sketches. It is a live count, not a record: a partition that changed
// aggregator within the window may be counted by both, or missing.
const (
	LiveSubject  = "adsyn.stats.live"
	RealtimeMins = 5
	maxLiveSites = 10000
	liveWait     = 500 * time.Millisecond // how long the API gathers answers
)

type liveAsk struct {
	Site string `msgpack:"s"`
	From int64  `msgpack:"f"` // unix minutes (From, To]
	To   int64  `msgpack:"t"`
}

type liveAnswer struct {
	Members   int64  `msgpack:"m"` // the aggregators this one sees, itself included
	Pageviews uint64 `msgpack:"pv"`
	Visitors  []byte `msgpack:"v"`
}

// answerLive serves a realtime ask from this aggregator's memory.
func (a *Aggregator) answerLive(m *nats.Msg) {
	var ask liveAsk
	if err := msgpack.Unmarshal(m.Data, &ask); err != nil || !ValidID(ask.Site) || m.Reply == "" {
		return
	}
	pv, v, err := a.live.Window(ask.Site, ask.From, ask.To)
	if err != nil {
		a.cfg.log.Warn("stats: realtime window", "err", err)
		return
	}
	ans := liveAnswer{Members: a.members.Load(), Pageviews: pv}
	if ans.Visitors, err = v.MarshalBinary(); err != nil {
		return
	}
	b, err := msgpack.Marshal(&ans)
	if err == nil {
		_ = m.Respond(b)
	}
}

// Realtime is a site's last minutes.
type Realtime struct {
	Site      string    `json:"site"`
	Minutes   int       `json:"minutes"`
	Since     time.Time `json:"since"`
	Pageviews uint64    `json:"pageviews"`
	Visitors  uint64    `json:"visitors"` // identifiable visitors, within 2%
	// Complete says every aggregator answered; else the figures are a
	// lower bound.
	Complete bool `json:"complete"`
}

// realtime answers GET /v1/sites/{id}/realtime.
func (h *Handler) realtime(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !ValidID(id) {
		api.WriteError(w, http.StatusBadRequest, "invalid_id", "the id must be 1-64 letters, digits, '_' or '-'")
		return
	}
	p, _ := auth.FromContext(r.Context())
	if !h.allowed(p, ScopeSite, id) {
		h.keys.Forbid(w, r, "/v1/sites/"+id+"/realtime")
		return
	}
	now := h.cfg.now()
	to := tally.FloorDiv(now.Unix(), 60)
	rt, err := h.gatherLive(r.Context(), id, to-RealtimeMins, to)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	rt.Since = time.Unix((to-RealtimeMins+1)*60, 0).UTC()
	api.WriteJSON(w, http.StatusOK, rt)
}

// gatherLive asks every aggregator and merges their answers until as many
// answered as they count themselves, or liveWait passes.
func (h *Handler) gatherLive(ctx context.Context, site string, from, to int64) (Realtime, error) {
	rt := Realtime{Site: site, Minutes: RealtimeMins}
	nc := h.js.Conn()
	ask, err := msgpack.Marshal(&liveAsk{Site: site, From: from, To: to})
	if err != nil {
		return rt, err
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return rt, fmt.Errorf("stats: realtime: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(LiveSubject, inbox, ask); err != nil {
		return rt, fmt.Errorf("stats: realtime: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, liveWait)
	defer cancel()
	var visitors audience.Visitors
	answers, members := int64(0), int64(1)
	for answers < members {
		m, err := sub.NextMsgWithContext(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			return rt, fmt.Errorf("stats: realtime: %w", err)
		}
		var ans liveAnswer
		var v audience.Visitors
		if msgpack.Unmarshal(m.Data, &ans) != nil || v.UnmarshalBinary(ans.Visitors) != nil {
			continue
		}
		rt.Pageviews += ans.Pageviews
		if err := visitors.Merge(&v); err != nil {
			return rt, err
		}
		answers++
		members = max(members, ans.Members)
	}
	rt.Visitors = visitors.Estimate()
	rt.Complete = answers > 0 && answers >= members
	return rt, nil
}
