package syndication

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/adsyn/adsyn/internal/api"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/profiles"
)

// Handler serves the partner registry (admin), the pull feed and delivery log
// (partners), and the recipients of a user's data (the user, and audited staff).
type Handler struct {
	reg  *Registry
	led  *Ledger
	keys *auth.Keys
	log  *slog.Logger
}

// NewHandler returns the API over reg and led, guarded by keys.
func NewHandler(reg *Registry, led *Ledger, keys *auth.Keys, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{reg: reg, led: led, keys: keys, log: log}
}

// Routes registers the endpoints on mux.
func (h *Handler) Routes(mux api.Mux) {
	admin := h.keys.Require(auth.Admin)
	partner := h.keys.Require(auth.Partner)
	mux.Handle("POST /v1/partners", admin(http.HandlerFunc(h.create)))
	mux.Handle("GET /v1/partners", admin(http.HandlerFunc(h.list)))
	mux.Handle("GET /v1/partners/{id}", admin(http.HandlerFunc(h.get)))
	mux.Handle("PATCH /v1/partners/{id}", admin(http.HandlerFunc(h.update)))
	mux.Handle("POST /v1/partners/{id}/replay", admin(http.HandlerFunc(h.replay)))
	mux.Handle("POST /v1/partners/{id}/resync", admin(http.HandlerFunc(h.resync)))
	mux.Handle("POST /v1/partners/{id}/secret", admin(http.HandlerFunc(h.rotateSecret)))
	mux.Handle("GET /v1/partners/{id}/deliveries", partner(http.HandlerFunc(h.deliveries)))
	mux.Handle("GET /v1/partners/{id}/dead-letters", partner(http.HandlerFunc(h.deadLetters)))
	mux.Handle("GET /v1/partners/{id}/stats", partner(http.HandlerFunc(h.partnerStats)))
	mux.Handle("GET /v1/feed", partner(http.HandlerFunc(h.feed)))
	mux.Handle("GET /v1/users/{id}/recipients", h.keys.Require(auth.User, auth.Support)(http.HandlerFunc(h.recipients)))
}

// public is a partner as the API shows it: never the secret.
type public struct {
	Partner
	Secret string `json:"secret,omitempty"`
	Mode   string `json:"mode"`
}

func show(p Partner) public {
	mode := "push"
	if p.Pull() {
		mode = "pull"
	}
	return public{Partner: p, Mode: mode}
}

// specLimit bounds a partner body.
const specLimit = 16 << 10

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var s Spec
	if !api.DecodeJSON(w, r, &s, specLimit) {
		return
	}
	p, err := h.reg.Create(r.Context(), &s)
	if err != nil && p.ID == "" {
		h.fail(w, err)
		return
	}
	if err != nil {
		h.log.Error("syndication: first sync not queued", "partner", p.ID, "err", err)
	}
	out := show(p)
	out.Secret = p.Secret // shown once
	api.WriteJSON(w, http.StatusCreated, out)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	ps := h.reg.List()
	out := make([]public, len(ps))
	for i, p := range ps {
		out[i] = show(p)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"partners": out})
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	p, ok := h.reg.Get(r.PathValue("id"))
	if !ok {
		h.fail(w, ErrNotFound)
		return
	}
	api.WriteJSON(w, http.StatusOK, show(p))
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	var s Spec
	if !api.DecodeJSON(w, r, &s, specLimit) {
		return
	}
	if s.ID != "" && s.ID != r.PathValue("id") {
		api.WriteError(w, http.StatusBadRequest, "invalid_field", "id cannot be changed")
		return
	}
	p, err := h.reg.Update(r.Context(), r.PathValue("id"), &s)
	if err != nil {
		h.fail(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, show(p))
}

func (h *Handler) replay(w http.ResponseWriter, r *http.Request) {
	n, err := h.led.Replay(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"replayed": n})
}

func (h *Handler) resync(w http.ResponseWriter, r *http.Request) {
	n, err := h.reg.Resync(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	api.WriteJSON(w, http.StatusAccepted, map[string]any{"queued": n})
}

// rotateSecret gives a partner a new webhook secret, shown once; the old
// one signs too for overlap_seconds (default a day).
func (h *Handler) rotateSecret(w http.ResponseWriter, r *http.Request) {
	body := struct {
		Overlap *int64 `json:"overlap_seconds"`
	}{}
	// The body is optional: an empty one takes the default overlap.
	br := bufio.NewReader(r.Body)
	if _, err := br.Peek(1); err == nil {
		r.Body = io.NopCloser(br)
		if !api.DecodeJSON(w, r, &body, 1<<10) {
			return
		}
	}
	overlap := 24 * time.Hour
	if body.Overlap != nil {
		if *body.Overlap < 0 || *body.Overlap > int64(MaxSecretOverlap/time.Second) {
			api.WriteError(w, http.StatusBadRequest, "invalid_field", "overlap_seconds must be 0 to 604800 (7 days)")
			return
		}
		overlap = time.Duration(*body.Overlap) * time.Second
	}
	p, err := h.reg.RotateSecret(r.Context(), r.PathValue("id"), overlap)
	if err != nil {
		h.fail(w, err)
		return
	}
	out := show(p)
	out.Secret = p.Secret // shown once
	api.WriteJSON(w, http.StatusOK, out)
}

// ownPartner lets a partner key read its own resources only.
func (h *Handler) ownPartner(w http.ResponseWriter, r *http.Request, id string) bool {
	p, _ := auth.FromContext(r.Context())
	if p.Role == auth.Admin || (p.Role == auth.Partner && p.Owner == id) {
		return true
	}
	h.keys.Forbid(w, r, r.Method+" "+r.URL.Path)
	return false
}

// Page is a cursor and a limit read from a query string.
type Page struct {
	Cursor uint64
	Limit  int
}

// ParsePage reads cursor (a stream sequence, default 0) and limit (1-max,
// default 100) from a query string.
func ParsePage(values map[string][]string, maxLimit int) (Page, error) {
	pg := Page{Limit: min(100, maxLimit)}
	if v := values["cursor"]; len(v) > 0 && v[0] != "" {
		n, err := strconv.ParseUint(v[0], 10, 64)
		if err != nil || len(v[0]) > 20 {
			return Page{}, errors.New("cursor must be a non-negative integer from a previous next_cursor")
		}
		pg.Cursor = n
	}
	if v := values["limit"]; len(v) > 0 && v[0] != "" {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > maxLimit {
			return Page{}, errors.New("limit must be an integer from 1 to " + strconv.Itoa(maxLimit))
		}
		pg.Limit = n
	}
	return pg, nil
}

func (h *Handler) deliveries(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !h.ownPartner(w, r, id) {
		return
	}
	pg, err := ParsePage(r.URL.Query(), 1000)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, "invalid_query", err.Error())
		return
	}
	if _, ok := h.reg.Get(id); !ok {
		h.fail(w, ErrNotFound)
		return
	}
	ds, next, err := h.led.ForPartner(r.Context(), id, pg.Cursor, pg.Limit)
	if err != nil {
		h.fail(w, err)
		return
	}
	if !h.audit(w, r, fmt.Sprintf("deliveries of partner %s, cursor %d to %d", id, pg.Cursor, next), subjects(ds, func(d Delivery) string { return d.User })) {
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"deliveries": ds, "next_cursor": next})
}

func (h *Handler) deadLetters(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !h.ownPartner(w, r, id) {
		return
	}
	ds, err := h.led.DeadLetters(r.Context(), id, 1000)
	if err != nil {
		h.fail(w, err)
		return
	}
	if !h.audit(w, r, "dead letters of partner "+id, subjects(ds, func(d DeadLetter) string { return d.User })) {
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"dead_letters": ds})
}

func (h *Handler) feed(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	id := p.Owner
	if p.Role == auth.Admin {
		id = r.URL.Query().Get("partner")
	}
	if _, ok := h.reg.Get(id); !ok {
		h.fail(w, ErrNotFound)
		return
	}
	pg, err := ParsePage(r.URL.Query(), 1000)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, "invalid_query", err.Error())
		return
	}
	items, next, err := h.led.Feed(r.Context(), id, pg.Cursor, pg.Limit)
	if err != nil {
		h.fail(w, err)
		return
	}
	users := subjects(items, func(it FeedItem) string {
		var v struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(it.Data, &v)
		return v.ID
	})
	if !h.audit(w, r, fmt.Sprintf("feed of partner %s, cursor %d to %d", id, pg.Cursor, next), users) {
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"events": items, "next_cursor": next})
}

func (h *Handler) recipients(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	user := r.PathValue("id")
	if !profiles.ValidID(user) { // it becomes part of a subject filter
		api.WriteError(w, http.StatusBadRequest, "invalid_id", "a user id is 1-64 letters, digits, '_' or '-'")
		return
	}
	switch {
	case p.Role == auth.User && p.Owner == user:
	case p.Role == auth.Admin || p.Role == auth.Support:
		if !h.audit(w, r, r.URL.Path, []string{user}) {
			return
		}
	default:
		h.keys.Forbid(w, r, r.Method+" "+r.URL.Path)
		return
	}
	rs, err := h.led.Recipients(r.Context(), user)
	if err != nil {
		h.fail(w, err)
		return
	}
	ds, err := h.led.ForUser(r.Context(), user, 1000)
	if err != nil {
		h.fail(w, err)
		return
	}
	if rs == nil {
		rs = []profiles.Recipient{}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"recipients": rs, "deliveries": ds})
}

// audit writes the read of personal data to the audit log, naming whose it
// is, before anything is served (P7); a page that holds no one's data is not
// a read. It answers 503 itself when the log cannot be written.
func (h *Handler) audit(w http.ResponseWriter, r *http.Request, resource string, subjects []string) bool {
	if len(subjects) == 0 {
		return true
	}
	p, _ := auth.FromContext(r.Context())
	if err := h.keys.Audit().Read(r.Context(), p, r.Method, resource, subjects); err != nil {
		h.log.Error("syndication: audit write failed", "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the audit log cannot be written now; retry")
		return false
	}
	return true
}

// subjects returns the distinct user ids of items, sorted.
func subjects[T any](items []T, user func(T) string) []string {
	var out []string
	for _, it := range items {
		if u := user(it); u != "" {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		api.WriteError(w, http.StatusBadRequest, "invalid_field", err.Error())
	case errors.Is(err, ErrNotFound):
		api.WriteError(w, http.StatusNotFound, "not_found", "no such partner")
	case errors.Is(err, ErrExists):
		api.WriteError(w, http.StatusConflict, "exists", err.Error())
	default:
		h.log.Error("syndication: request failed", "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "syndication storage is unavailable; retry")
	}
}
