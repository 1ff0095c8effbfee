package stats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/api"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/privacy"
	"github.com/adsyn/adsyn/internal/stats/tally"
)

// Handler serves the statistics API, the call tracking webhook and the
// dashboard.
type Handler struct {
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	keys *auth.Keys
	cfg  config
	// scrub is the choke point call events pass (P1, P2, P6).
	scrub *privacy.Scrubber
	cache *queryCache // nil: every query reads and decodes its records

	latency                       *metrics.Histogram
	callsAccepted, callsDuplicate *metrics.Counter
}

// NewHandler opens the stats bucket through js; keys guards the routes.
func NewHandler(ctx context.Context, js jetstream.JetStream, keys *auth.Keys, opts ...HandlerOption) (*Handler, error) {
	if js == nil || keys == nil {
		return nil, fmt.Errorf("%w: nil JetStream or keys", ErrBadOption)
	}
	cfg, err := newConfig(opts, HandlerOption.handler)
	if err != nil {
		return nil, err
	}
	scrub, err := privacy.New(cfg.privacy)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	ctx, cancel := withDefaultTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		return nil, fmt.Errorf("stats: open %s: %w", bus.BucketStats, err)
	}
	const calls, callsHelp = "adsyn_stats_calls_total", "Call tracking webhooks stored, by result."
	return &Handler{
		js: js, kv: kv, keys: keys, cfg: cfg, scrub: scrub,
		cache:          newQueryCache(cfg.queryCache, cfg.reg),
		latency:        cfg.reg.Histogram("adsyn_stats_query_seconds", "Time to answer a stats query.", metrics.LatencyBuckets),
		callsAccepted:  cfg.reg.Counter(calls, callsHelp, "result", "stored"),
		callsDuplicate: cfg.reg.Counter(calls, callsHelp, "result", "duplicate"),
	}, nil
}

// Routes registers the endpoints on mux.
func (h *Handler) Routes(mux api.Mux) {
	mux.Handle("GET /v1/campaigns/{id}/stats", h.keys.Require(auth.Marketer)(h.stats(ScopeCampaign)))
	mux.Handle("GET /v1/sites/{id}/stats", h.keys.Require(auth.Publisher)(h.stats(ScopeSite)))
	mux.Handle("GET /v1/sites/{id}/realtime", h.keys.Require(auth.Publisher)(http.HandlerFunc(h.realtime)))
	mux.Handle("GET /v1/stats/summary", h.keys.Require(auth.Marketer, auth.Publisher, auth.Partner)(http.HandlerFunc(h.summary)))
	// Admin keys only until auth has a role for telephony providers.
	mux.Handle("POST /v1/events/call", h.keys.Require(auth.Telephony)(http.HandlerFunc(h.call)))
	mux.HandleFunc("GET /dashboard", serveDashboard)
}

// allowed reports whether p may read the statistics of scope s and id.
func (h *Handler) allowed(p auth.Principal, s Scope, id string) bool {
	switch {
	case p.Role == auth.Admin:
		return true
	case s == ScopeCampaign && p.Role == auth.Marketer && h.cfg.campaignOwner != nil:
		owner, ok := h.cfg.campaignOwner(id)
		return ok && owner == p.Owner
	case s == ScopeSite && p.Role == auth.Publisher && h.cfg.siteOwner != nil:
		owner, ok := h.cfg.siteOwner(id)
		return ok && owner == p.Owner
	}
	return false
}

func writeParamError(w http.ResponseWriter, err error) {
	var qe *queryError
	if errors.As(err, &qe) {
		status := http.StatusBadRequest
		if qe.code == "body_too_large" {
			status = http.StatusRequestEntityTooLarge
		}
		api.WriteError(w, status, qe.code, qe.msg)
		return
	}
	api.WriteError(w, http.StatusBadRequest, "invalid_request", err.Error())
}

func (h *Handler) stats(s Scope) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.PathValue("id")
		if !ValidID(id) {
			api.WriteError(w, http.StatusBadRequest, "invalid_id", "the id must be 1-64 letters, digits, '_' or '-'")
			return
		}
		p, _ := auth.FromContext(r.Context())
		if !h.allowed(p, s, id) {
			h.keys.Forbid(w, r, "/v1/"+scopeNoun(s)+"s/"+id+"/stats")
			return
		}
		q, err := ParseQuery(s, id, r.URL.Query(), h.cfg.now())
		if err != nil {
			writeParamError(w, err)
			return
		}
		var want tally.DimMask
		if q.ByDim {
			want = tally.MaskOf(q.Breakdown)
		}
		want |= tally.WithAudience // a site's audience, a campaign's reach
		if q.ByAudience {
			want |= tally.AudienceMaskOf(q.Audience) // the other breakdowns are skipped unread
		}

		ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
		defer cancel()
		recs, days, err := h.read(ctx, s, id, q.From, q.To, want)
		if err != nil {
			h.unavailable(w, r, err)
			return
		}
		rep := build(q, recs, days)
		if q.CSV {
			name := fmt.Sprintf("%s-%s-%s-%s.csv", scopeNoun(s), id, rep.From.Format("20060102T15"), rep.To.Format("20060102T15"))
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
			w.Header().Set("Cache-Control", "no-store")
			if err := rep.WriteCSV(w); err != nil {
				h.cfg.log.Debug("stats csv write", "err", err)
			}
		} else {
			// api.WriteJSON's bytes, written without reflection.
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			_ = rep.WriteJSON(w) // the client went away; nothing to do
		}
		h.latency.Observe(time.Since(start).Seconds())
	})
}

// read returns the records of a range, through the cache when there is one,
// and the whole days it merged.
func (h *Handler) read(ctx context.Context, s Scope, id string, from, to int64, want tally.DimMask) (map[int64]*Record, map[int64]*daySum, error) {
	if h.cache == nil {
		recs, err := readRange(ctx, h.js, s, id, from, to, want)
		return recs, nil, err
	}
	return h.cache.readRange(ctx, h.js, h.kv, s, id, from, to, want)
}

func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	h.cfg.log.Warn("stats read failed", "path", r.URL.Path, "err", err)
	api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "statistics cannot be read now; retry")
}

// Entry is one campaign or site of a summary.
type Entry struct {
	ID     string  `json:"id"`
	Name   string  `json:"name,omitempty"`
	Totals Metrics `json:"totals"`
}

// Summary lists the caller's campaigns or sites with their totals.
type Summary struct {
	Role      string    `json:"role"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Campaigns []Entry   `json:"campaigns"`
	Sites     []Entry   `json:"sites"`
	Truncated bool      `json:"truncated,omitempty"`
	// Partner is a partner key's own id: its figures are the feed's,
	// at /v1/partners/{id}/stats.
	Partner string `json:"partner,omitempty"`
}

// maxSummary bounds the entries of one summary.
const maxSummary = 500

func (h *Handler) summary(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	v := r.URL.Query()
	for k := range v {
		if k != "from" && k != "to" {
			api.WriteError(w, http.StatusBadRequest, "unknown_parameter", fmt.Sprintf("unknown parameter %q (from, to)", k))
			return
		}
	}
	from, to, err := ParseRange(v, h.cfg.now())
	if err != nil {
		writeParamError(w, err)
		return
	}
	p, _ := auth.FromContext(r.Context())
	out := Summary{Role: string(p.Role), From: hourTime(from), To: hourTime(to), Campaigns: []Entry{}, Sites: []Entry{}}
	if p.Role == auth.Partner {
		out.Partner = p.Owner
		api.WriteJSON(w, http.StatusOK, out)
		return
	}
	owner := p.Owner
	if p.Role == auth.Admin {
		owner = ""
	}
	if (p.Role == auth.Admin || p.Role == auth.Marketer) && h.cfg.campaigns != nil {
		for _, c := range h.cfg.campaigns(owner) {
			if ValidID(c.ID) && (p.Role == auth.Admin || h.allowed(p, ScopeCampaign, c.ID)) {
				out.Campaigns = append(out.Campaigns, Entry{ID: c.ID, Name: c.Name})
			}
		}
	}
	if (p.Role == auth.Admin || p.Role == auth.Publisher) && h.cfg.sites != nil {
		for _, s := range h.cfg.sites(owner) {
			if ValidID(s.ID) && (p.Role == auth.Admin || h.allowed(p, ScopeSite, s.ID)) {
				out.Sites = append(out.Sites, Entry{ID: s.ID, Name: s.Name})
			}
		}
	}
	for _, list := range []*[]Entry{&out.Campaigns, &out.Sites} {
		slices.SortFunc(*list, func(a, b Entry) int { return cmp.Compare(a.ID, b.ID) })
		if len(*list) > maxSummary {
			*list = (*list)[:maxSummary]
			out.Truncated = true
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := h.totals(ctx, ScopeCampaign, out.Campaigns, from, to); err != nil {
		h.unavailable(w, r, err)
		return
	}
	if err := h.totals(ctx, ScopeSite, out.Sites, from, to); err != nil {
		h.unavailable(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, out)
	h.latency.Observe(time.Since(start).Seconds())
}

// totals fills each entry's totals over [from, to), a few reads at a time.
func (h *Handler) totals(ctx context.Context, s Scope, entries []Entry, from, to int64) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int)
	)
	for range min(8, len(entries)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				recs, _, err := h.read(ctx, s, entries[i].ID, from, to, 0)
				if err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					continue
				}
				var c Counters
				for _, r := range recs {
					c.Add(&r.Totals)
				}
				entries[i].Totals = MetricsOf(c)
			}
		}()
	}
	for i := range entries {
		next <- i
	}
	close(next)
	wg.Wait()
	return firstErr
}

// call stores a call report as a KindCall event of the campaign owning the
// tracking number; 202 means JetStream stored it.
func (h *Handler) call(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			api.WriteError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json")
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCallBody))
	if err != nil {
		api.WriteError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body exceeds %d bytes", MaxCallBody))
		return
	}
	e, number, err := ParseCall(body, h.cfg.now())
	if err != nil {
		writeParamError(w, err)
		return
	}
	var camp string
	ok := false
	if h.cfg.tracking != nil {
		camp, ok = h.cfg.tracking(number)
	}
	if !ok || !ValidID(camp) {
		api.WriteError(w, http.StatusNotFound, "unknown_tracking_number", "no campaign owns this tracking number")
		return
	}
	e.Campaign = camp
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	ack, err := bus.PublishOne(ctx, h.js, h.scrub, h.cfg.partitions, e)
	if err != nil {
		h.cfg.log.Warn("stats call not stored", "campaign", camp, "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the call could not be stored; retry")
		return
	}
	if ack.Duplicate {
		h.callsDuplicate.Inc()
	} else {
		h.callsAccepted.Inc()
	}
	api.WriteJSON(w, http.StatusAccepted, map[string]any{"id": e.ID.String(), "campaign": camp, "duplicate": ack.Duplicate})
}
