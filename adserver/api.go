package adserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/api"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/ids"
	"github.com/adsyn/adsyn/segments"
)

// Handler serves the campaign model's CRUD and the explain view on the API:
// /v1/advertisers, /v1/campaigns, /v1/creatives, /v1/sites (each with
// /{id}) and GET /v1/explain. A marketer key sees and changes only its own
// advertiser's records; a publisher key only its own sites; refusals are
// audit-logged 403s.
//
// Deleting a campaign or a site leaves a tombstone naming its owner, since
// statistics are keyed by the id: creating (POST, or PUT of a missing id) a
// campaign or site with that id for another advertiser or publisher answers
// 409 "id_taken", whoever asks, even an admin. The same owner may recreate
// its own id, and its statistics continue.
type Handler struct {
	cat   *Catalog
	own   bool // cat was opened by NewHandler
	store *Store
	keys  *auth.Keys
	cfg   *config
}

// NewHandler returns the API handler. It opens its own catalog unless given
// one with WithCatalog (share the edge's, so explain sees its pacing).
// Reads WithTargetCheck, WithSegments (explain by visitor), WithClock,
// WithLogger, WithMetrics.
func NewHandler(ctx context.Context, js jetstream.JetStream, keys *auth.Keys, opts ...HandlerOption) (*Handler, error) {
	if keys == nil {
		return nil, errors.New("adserver: NewHandler needs the API keys")
	}
	cfg, err := newConfig(opts, HandlerOption.handler)
	if err != nil {
		return nil, err
	}
	h := &Handler{cat: cfg.catalog, keys: keys, cfg: cfg}
	if h.cat == nil {
		if h.cat, err = newCatalog(ctx, js, cfg); err != nil {
			return nil, err
		}
		h.own = true
	}
	h.store = &Store{kv: h.cat.kv, check: cfg.check, now: cfg.now}
	return h, nil
}

// Close closes the catalog NewHandler opened.
func (h *Handler) Close() {
	if h.own {
		h.cat.Close()
	}
}

// Routes registers the handler's routes on mux.
func (h *Handler) Routes(mux api.Mux) {
	ads := h.keys.Require(auth.Marketer)
	sites := h.keys.Require(auth.Marketer, auth.Publisher)
	isAdmin := func(p auth.Principal) bool { return p.Role == auth.Admin }
	ownsAdv := func(p auth.Principal, adv string) bool {
		return isAdmin(p) || p.Role == auth.Marketer && p.Owner == adv
	}
	register(h, mux, ads, resource[Advertiser]{
		name: "advertisers", prefix: prefixAdvertiser,
		id:        func(v *Advertiser) *string { return &v.ID },
		all:       func(s *Snapshot) map[string]*Advertiser { return s.Advertisers },
		check:     func(_ context.Context, v *Advertiser) error { return v.Validate() },
		canRead:   func(p auth.Principal, v *Advertiser) bool { return ownsAdv(p, v.ID) },
		canWrite:  func(p auth.Principal, v *Advertiser) bool { return ownsAdv(p, v.ID) },
		canDelete: func(p auth.Principal, v *Advertiser) bool { return isAdmin(p) },
		inUse: func(s *Snapshot, v *Advertiser) string {
			for _, c := range s.Campaigns {
				if c.Advertiser == v.ID {
					return "campaign " + c.ID
				}
			}
			return ""
		},
	})
	register(h, mux, ads, resource[Campaign]{
		name: "campaigns", prefix: prefixCampaign,
		id:       func(v *Campaign) *string { return &v.ID },
		all:      func(s *Snapshot) map[string]*Campaign { return s.Campaigns },
		check:    h.store.checkCampaign,
		canRead:  func(p auth.Principal, v *Campaign) bool { return ownsAdv(p, v.Advertiser) },
		canWrite: func(p auth.Principal, v *Campaign) bool { return ownsAdv(p, v.Advertiser) },
		filter:   func(r *http.Request, v *Campaign) bool { return match(r, "advertiser", v.Advertiser) },
	})
	register(h, mux, ads, resource[Creative]{
		name: "creatives", prefix: prefixCreative,
		id:       func(v *Creative) *string { return &v.ID },
		all:      func(s *Snapshot) map[string]*Creative { return s.Creatives },
		check:    h.store.checkCreative,
		canRead:  func(p auth.Principal, v *Creative) bool { return ownsAdv(p, v.Advertiser) },
		canWrite: func(p auth.Principal, v *Creative) bool { return ownsAdv(p, v.Advertiser) },
		filter: func(r *http.Request, v *Creative) bool {
			return match(r, "advertiser", v.Advertiser) && match(r, "campaign", v.Campaign)
		},
	})
	ownsSite := func(p auth.Principal, v *Site) bool {
		return isAdmin(p) || p.Role == auth.Publisher && p.Owner == v.Publisher
	}
	register(h, mux, sites, resource[Site]{
		name: "sites", prefix: prefixSite,
		id:    func(v *Site) *string { return &v.ID },
		all:   func(s *Snapshot) map[string]*Site { return s.Sites },
		check: func(_ context.Context, v *Site) error { return v.Validate() },
		// Marketers read sites to target them; publishers see their own.
		canRead:  func(p auth.Principal, v *Site) bool { return p.Role == auth.Marketer || ownsSite(p, v) },
		canWrite: ownsSite,
		filter:   func(r *http.Request, v *Site) bool { return match(r, "publisher", v.Publisher) },
	})
	mux.Handle("GET /v1/explain", h.keys.Require(auth.Admin)(http.HandlerFunc(h.explain)))
}

func match(r *http.Request, param, v string) bool {
	want := r.URL.Query().Get(param)
	return want == "" || want == v
}

type resource[T any] struct {
	name, prefix string
	id           func(*T) *string
	all          func(*Snapshot) map[string]*T
	check        func(context.Context, *T) error
	canRead      func(auth.Principal, *T) bool
	canWrite     func(auth.Principal, *T) bool
	canDelete    func(auth.Principal, *T) bool // default canWrite
	filter       func(*http.Request, *T) bool
	inUse        func(*Snapshot, *T) string // what still refers to it
}

func register[T any](h *Handler, mux api.Mux, guard func(http.Handler) http.Handler, res resource[T]) {
	if res.canDelete == nil {
		res.canDelete = res.canWrite
	}
	base := "/v1/" + res.name
	handle := func(pattern string, fn http.HandlerFunc) { mux.Handle(pattern, guard(fn)) }

	handle("GET "+base, func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		out := []*T{}
		for _, v := range res.all(h.cat.Index().Snap) {
			if res.canRead(p, v) && (res.filter == nil || res.filter(r, v)) {
				out = append(out, v)
			}
		}
		slices.SortFunc(out, func(a, b *T) int { return cmp.Compare(*res.id(a), *res.id(b)) })
		api.WriteJSON(w, http.StatusOK, map[string]any{res.name: out})
	})

	handle("GET "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		v := new(T)
		rev, err := h.store.get(r.Context(), res.prefix, r.PathValue("id"), v)
		if err != nil {
			h.fail(w, err)
			return
		}
		if !res.canRead(p, v) {
			h.keys.Forbid(w, r, base+"/"+r.PathValue("id"))
			return
		}
		writeRev(w, http.StatusOK, rev, v)
	})

	handle("POST "+base, func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		v := new(T)
		if !api.DecodeJSON(w, r, v, 0) {
			return
		}
		if *res.id(v) == "" {
			*res.id(v) = newID()
		}
		if !res.canWrite(p, v) {
			h.keys.Forbid(w, r, base+"/"+*res.id(v))
			return
		}
		if err := res.check(r.Context(), v); err != nil {
			h.fail(w, err)
			return
		}
		rev, err := h.store.write(r.Context(), res.prefix, *res.id(v), v, true, 0)
		if err != nil {
			h.fail(w, err)
			return
		}
		w.Header().Set("Location", base+"/"+*res.id(v))
		writeRev(w, http.StatusCreated, rev, v)
	})

	handle("PUT "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		id := r.PathValue("id")
		if !ValidID(id) {
			h.fail(w, invalid("id %q must be 1-64 characters of A-Z a-z 0-9 _ -", id))
			return
		}
		v := new(T)
		if !api.DecodeJSON(w, r, v, 0) {
			return
		}
		if *res.id(v) == "" {
			*res.id(v) = id
		}
		if *res.id(v) != id {
			h.fail(w, invalid("the body's id %q differs from the path's %q", *res.id(v), id))
			return
		}
		var rev uint64
		if m := strings.Trim(r.Header.Get("If-Match"), `"`); m != "" {
			n, err := strconv.ParseUint(m, 10, 64)
			if err != nil || n == 0 {
				h.fail(w, invalid("If-Match must be a revision number from ETag"))
				return
			}
			rev = n
		}
		old := new(T)
		create := false
		switch _, err := h.store.get(r.Context(), res.prefix, id, old); {
		case err == nil:
			if !res.canWrite(p, old) {
				h.keys.Forbid(w, r, base+"/"+id)
				return
			}
		case errors.Is(err, ErrNotFound):
			// A create: it must not land over a record made meanwhile,
			// nor over an id deleted meanwhile by another owner.
			create = rev == 0
		default:
			h.fail(w, err)
			return
		}
		if !res.canWrite(p, v) {
			h.keys.Forbid(w, r, base+"/"+id)
			return
		}
		if err := res.check(r.Context(), v); err != nil {
			h.fail(w, err)
			return
		}
		newRev, err := h.store.write(r.Context(), res.prefix, id, v, create, rev)
		if err != nil {
			h.fail(w, err)
			return
		}
		writeRev(w, http.StatusOK, newRev, v)
	})

	handle("DELETE "+base+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		id := r.PathValue("id")
		v := new(T)
		if _, err := h.store.get(r.Context(), res.prefix, id, v); err != nil {
			h.fail(w, err)
			return
		}
		if !res.canDelete(p, v) {
			h.keys.Forbid(w, r, base+"/"+id)
			return
		}
		if res.inUse != nil {
			if what := res.inUse(h.cat.Index().Snap, v); what != "" {
				api.WriteError(w, http.StatusConflict, "in_use", fmt.Sprintf("%s is still used by %s; archive it instead, or delete that first", id, what))
				return
			}
		}
		if err := h.store.remove(r.Context(), res.prefix, id, v); err != nil {
			h.fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func writeRev(w http.ResponseWriter, status int, rev uint64, v any) {
	w.Header().Set("ETag", `"`+strconv.FormatUint(rev, 10)+`"`)
	api.WriteJSON(w, status, v)
}

func newID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 12)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}

// fail maps an error to its answer: 4xx for the caller's mistakes, 503 when
// NATS cannot be reached, never 500.
func (h *Handler) fail(w http.ResponseWriter, err error) {
	msg := strings.TrimPrefix(err.Error(), "adserver: ")
	switch {
	case errors.Is(err, ErrSensitive):
		api.WriteError(w, http.StatusUnprocessableEntity, "sensitive_target", msg)
	case errors.Is(err, ErrInvalid):
		api.WriteError(w, http.StatusBadRequest, "invalid", strings.TrimPrefix(msg, "invalid: "))
	case errors.Is(err, ErrNotFound):
		api.WriteError(w, http.StatusNotFound, "not_found", msg)
	case errors.Is(err, ErrTaken):
		api.WriteError(w, http.StatusConflict, "id_taken", msg)
	case errors.Is(err, ErrExists):
		api.WriteError(w, http.StatusConflict, "exists", msg+"; use PUT to change it")
	case errors.Is(err, ErrConflict):
		api.WriteError(w, http.StatusPreconditionFailed, "revision_conflict", msg+"; GET it again and retry")
	default:
		h.cfg.log.Error("adserver: api", "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the campaign store cannot be reached; retry")
	}
}

// explain answers GET /v1/explain?site=&slot=[&visitor=][&lang=][&country=]
// [&region=][&device=][&c=cat1,cat2][&personalize=true][&seed=N]: for every
// campaign, why it would or would not be chosen for such a request.
func (h *Handler) explain(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := Request{
		Now:     h.cfg.now().UnixMilli(),
		Site:    q.Get("site"),
		Slot:    q.Get("slot"),
		Lang:    strings.ToLower(q.Get("lang")),
		Country: strings.ToUpper(q.Get("country")),
		Region:  strings.ToUpper(q.Get("region")),
		Device:  strings.ToLower(q.Get("device")),
		Rand:    rand.Uint64(),
	}
	if !ValidID(req.Site) || !ValidID(req.Slot) {
		api.WriteError(w, http.StatusBadRequest, "invalid", "site and slot are required ids")
		return
	}
	if c := q.Get("c"); c != "" {
		req.Categories = strings.Split(c, ",")
		if len(req.Categories) > maxCats {
			api.WriteError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("at most %d categories", maxCats))
			return
		}
	}
	req.Personalize, _ = strconv.ParseBool(q.Get("personalize"))
	if s := q.Get("seed"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, "invalid", "seed must be an unsigned integer")
			return
		}
		req.Rand = n
	}
	if v := q.Get("visitor"); v != "" {
		if !ids.ValidVisitor(v) {
			api.WriteError(w, http.StatusBadRequest, "invalid", "visitor must be a visitor id")
			return
		}
		if h.cfg.segments == nil {
			api.WriteError(w, http.StatusBadRequest, "no_records", "this process has no visitor record store")
			return
		}
		// A staff read of a visitor's record (P7).
		p, _ := auth.FromContext(r.Context())
		if err := h.keys.Audit().Record(r.Context(), p, "explain", "visitor:"+v, true); err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the audit log cannot be written; retry")
			return
		}
		rec, err := h.cfg.segments.Get(r.Context(), v)
		if errors.Is(err, segments.ErrNotFound) {
			rec, err = nil, nil
		}
		if err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the visitor record cannot be read; retry")
			return
		}
		req.Record = rec
	}
	api.WriteJSON(w, http.StatusOK, h.cat.Index().Explain(&req))
}
