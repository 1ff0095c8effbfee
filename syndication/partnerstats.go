package syndication

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/api"
	"github.com/adsyn/adsyn/internal/bus"
)

// PartnerDay is a partner's feed figures of one day (UTC), from the
// delivery log.
type PartnerDay struct {
	Day         string `json:"day"`       // YYYY-MM-DD
	Delivered   int    `json:"delivered"` // profiles sent that the partner did not hold
	Updates     int    `json:"updates"`   // profiles sent again, changed
	Deletions   int    `json:"deletions"` // withdrawals and erasures sent
	Failures    int    `json:"failures"`  // answers refused (4xx), exhausted or 410
	Retries     int    `json:"retries"`   // attempts beyond the first
	DeadLetters int    `json:"dead_letters"`
	// LagP50MS and LagP99MS: from a profile's change to the partner's
	// answer, in milliseconds, over the day's changes sent (0: none).
	LagP50MS int64 `json:"lag_p50_ms"`
	LagP99MS int64 `json:"lag_p99_ms"`
}

// Limits of a partner statistics request.
const (
	maxStatsDays = 31
	maxStatsLog  = 2_000_000 // log entries read for one request
)

// PartnerStats sums the delivery log of partner per day over [from, to).
// The log keeps the newest logDepth revisions per partner and user: older
// days count what is left of them.
func (l *Ledger) PartnerStats(ctx context.Context, partner string, from, to time.Time) ([]PartnerDay, error) {
	stream := bus.KVStream(bus.BucketSyndState)
	c, err := l.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{stateSubject + partner + ".*"},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy, OptStartTime: &from,
	})
	if err != nil {
		return nil, fmt.Errorf("syndication: read %s: %w", stream, err)
	}
	days := map[string]*PartnerDay{}
	lags := map[string][]int64{}
	for n := 0; n < maxStatsLog; {
		batch, err := c.FetchNoWait(1000)
		if err != nil {
			return nil, fmt.Errorf("syndication: read %s: %w", stream, err)
		}
		got, done := 0, false
		for m := range batch.Messages() {
			got++
			d, ok := entryOf(m.Data())
			if !ok {
				continue
			}
			if !d.Time.Before(to) {
				done = true
				continue
			}
			key := d.Time.UTC().Format(time.DateOnly)
			pd := days[key]
			if pd == nil {
				pd = &PartnerDay{Day: key}
				days[key] = pd
			}
			pd.add(&d)
			if d.LagMS > 0 && (d.Outcome == OutcomeDelivered || d.Outcome == OutcomePublished) {
				lags[key] = append(lags[key], d.LagMS)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("syndication: read %s: %w", stream, err)
		}
		n += got
		if got == 0 || done {
			break
		}
	}
	out := make([]PartnerDay, 0, len(days))
	for key, pd := range days {
		pd.LagP50MS, pd.LagP99MS = percentile(lags[key], 0.50), percentile(lags[key], 0.99)
		out = append(out, *pd)
	}
	slices.SortFunc(out, func(a, b PartnerDay) int { return strings.Compare(a.Day, b.Day) })
	return out, nil
}

// add counts one delivery.
func (pd *PartnerDay) add(d *Delivery) {
	pd.Retries += max(d.Attempts-1, 0)
	switch d.Outcome {
	case OutcomeDelivered, OutcomePublished:
		switch {
		case d.Type == TypeDeleted:
			pd.Deletions++
		case d.First:
			pd.Delivered++
		default:
			pd.Updates++
		}
	case OutcomeDeadLetter:
		pd.Failures++
		pd.DeadLetters++
	case OutcomeDisabled:
		pd.Failures++
	}
}

// percentile returns the q-quantile of v (nearest rank), 0 for none.
func percentile(v []int64, q float64) int64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	i := int(q*float64(len(v))+0.999999) - 1
	return v[min(max(i, 0), len(v)-1)]
}

// partnerStats answers GET /v1/partners/{id}/stats?from=&to= (dates, UTC;
// by default the last 7 days), for the partner itself or an admin.
func (h *Handler) partnerStats(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !h.ownPartner(w, r, id) {
		return
	}
	if _, ok := h.reg.Get(id); !ok {
		h.fail(w, ErrNotFound)
		return
	}
	q := r.URL.Query()
	to := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	from := to.AddDate(0, 0, -7)
	for name, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				api.WriteError(w, http.StatusBadRequest, "invalid_"+name, name+" must be a date, YYYY-MM-DD")
				return
			}
			if name == "to" {
				t = t.AddDate(0, 0, 1) // the whole day
			}
			*dst = t
		}
	}
	if !from.Before(to) || to.Sub(from) > maxStatsDays*24*time.Hour {
		api.WriteError(w, http.StatusBadRequest, "invalid_range", fmt.Sprintf("from must be before to, at most %d days apart", maxStatsDays))
		return
	}
	days, err := h.led.PartnerStats(r.Context(), id, from, to)
	if err != nil {
		h.fail(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"partner": id, "from": from, "to": to, "days": days})
}
