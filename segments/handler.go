package segments

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/adsyn/adsyn/internal/api"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// Handler serves the segments API: what is held about a visitor and why,
// and the taxonomy. Every route is admin-only; visitor reads are written to
// the audit log before they are answered (P7).
type Handler struct {
	store Store
	live  *taxonomy.Live
	keys  *auth.Keys
	o     options
}

// NewHandler returns the API handler. Options: WithPolicy/WithHalfLife (to
// decay scores to now), WithLogger.
func NewHandler(store Store, live *taxonomy.Live, keys *auth.Keys, opts ...HandlerOption) (*Handler, error) {
	if store == nil || live == nil || keys == nil {
		return nil, errors.New("segments: handler needs a store, a taxonomy and the keys")
	}
	o, err := buildOptions(opts, HandlerOption.handler)
	if err != nil {
		return nil, err
	}
	return &Handler{store: store, live: live, keys: keys, o: o}, nil
}

// Routes registers
//
//	GET /v1/visitors/{id}/segments  what is held about a visitor, and why
//	GET /v1/taxonomy                the taxonomy in force
//	PUT /v1/taxonomy                replace it (validated: 400 names the refused segment)
func (h *Handler) Routes(mux api.Mux) {
	admin := h.keys.Require(auth.Admin)
	mux.Handle("GET /v1/visitors/{id}/segments", admin(http.HandlerFunc(h.visitor)))
	mux.Handle("GET /v1/taxonomy", admin(http.HandlerFunc(h.getTaxonomy)))
	mux.Handle("PUT /v1/taxonomy", admin(http.HandlerFunc(h.putTaxonomy)))
}

// VisitorView is the visibility endpoint's answer.
type VisitorView struct {
	Visitor   string         `json:"visitor"`
	LastSeen  time.Time      `json:"last_seen"`
	Events    uint64         `json:"events"`
	Languages []string       `json:"languages"`
	Segments  []SegmentView  `json:"segments"`
	Frequency []FrequencyCap `json:"frequency"`
	HalfLife  string         `json:"half_life"`
}

// SegmentView is one held segment, its score decayed to now.
type SegmentView struct {
	ID       string            `json:"id"`
	Name     string            `json:"name,omitempty"` // "" when the taxonomy no longer has it
	Category taxonomy.Category `json:"category,omitempty"`
	Score    float64           `json:"score"`        // decayed to now
	Stored   float64           `json:"stored_score"` // as stored, at last_contribution
	Last     time.Time         `json:"last_contribution"`
	Rule     string            `json:"rule,omitempty"` // the rule that fired last
}

// FrequencyCap is one campaign's recent impressions.
type FrequencyCap struct {
	Campaign    string    `json:"campaign"`
	Impressions int       `json:"impressions"`
	Last        time.Time `json:"last"`
}

func (h *Handler) visitor(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !ValidVisitor(id) {
		api.WriteError(w, http.StatusBadRequest, "invalid_visitor", "a visitor id is 1-128 of A-Z a-z 0-9 - _ = . /")
		return
	}
	p, _ := auth.FromContext(r.Context())
	// The read is on record before anything is read (P7).
	if err := h.keys.Audit().Read(r.Context(), p, "read", "visitor "+id+" segments", []string{id}); err != nil {
		h.o.log.Error("segments: audit write failed", "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the audit log cannot be written now; retry")
		return
	}
	rec, err := h.store.Get(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		api.WriteError(w, http.StatusNotFound, "not_found", "nothing is held about visitor "+id)
		return
	case err != nil:
		api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the visitor store cannot be read now; retry")
		return
	}
	api.WriteJSON(w, http.StatusOK, h.view(rec, time.Now()))
}

// view presents a record; it reads rec and does not keep it.
func (h *Handler) view(rec *Record, now time.Time) VisitorView {
	tax := h.live.Load()
	hl := h.o.policy.HalfLife
	v := VisitorView{
		Visitor:   rec.Visitor,
		Events:    rec.Events,
		Languages: append([]string{}, rec.Langs...),
		Segments:  []SegmentView{},
		Frequency: []FrequencyCap{},
		HalfLife:  hl.String(),
	}
	if rec.LastSeen > 0 {
		v.LastSeen = time.UnixMilli(rec.LastSeen).UTC()
	}
	for _, s := range rec.Segments {
		sv := SegmentView{ID: s.ID, Score: s.Decayed(now.UnixMilli(), hl), Stored: s.Score, Last: time.UnixMilli(s.At).UTC(), Rule: s.Rule}
		if seg, ok := tax.Segment(s.ID); ok {
			sv.Name, sv.Category = seg.Name, seg.Category
		}
		v.Segments = append(v.Segments, sv)
	}
	for _, c := range rec.Caps {
		f := FrequencyCap{Campaign: c.Campaign, Impressions: len(c.Times)}
		if n := len(c.Times); n > 0 {
			f.Last = time.UnixMilli(c.Times[n-1]).UTC()
		}
		v.Frequency = append(v.Frequency, f)
	}
	return v
}

func (h *Handler) getTaxonomy(w http.ResponseWriter, _ *http.Request) {
	t := h.live.Load()
	api.WriteJSON(w, http.StatusOK, t.File())
}

func (h *Handler) putTaxonomy(w http.ResponseWriter, r *http.Request) {
	var f taxonomy.File
	if !api.DecodeJSON(w, r, &f, taxonomy.MaxTaxonomySize) {
		return
	}
	var (
		t   *taxonomy.Taxonomy
		err error
	)
	if h.o.shared != nil {
		t, err = h.o.shared.Put(r.Context(), f)
	} else {
		t, err = taxonomy.New(f)
	}
	if errors.Is(err, ErrUnavailable) {
		api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the taxonomy could not be stored; retry")
		return
	}
	if err != nil {
		var se *taxonomy.SegmentError
		code := "invalid_taxonomy"
		if errors.Is(err, taxonomy.ErrSensitive) {
			code = "sensitive_segment"
		}
		msg := err.Error()
		if errors.As(err, &se) {
			msg = fmt.Sprintf("segment %q: %s", se.Segment, se.Reason)
		}
		api.WriteError(w, http.StatusBadRequest, code, msg)
		return
	}
	h.live.Store(t)
	p, _ := auth.FromContext(r.Context())
	h.o.log.Info("segments: taxonomy replaced", "key", p.KeyID, "version", t.Version(), "segments", t.Len())
	api.WriteJSON(w, http.StatusOK, map[string]any{"version": t.Version(), "segments": t.Len()})
}
