package profiles

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/adsyn/adsyn/internal/api"
	"github.com/adsyn/adsyn/internal/auth"
)

// Handler serves /v1/users (the account, for its owner) and /v1/profiles
// (public profiles and search, for anyone).
type Handler struct {
	store *Store
	keys  *auth.Keys
	log   *slog.Logger
}

// NewHandler returns the API of store, guarded by keys.
func NewHandler(store *Store, keys *auth.Keys, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{store: store, keys: keys, log: log}
}

// Routes registers the endpoints on mux.
func (h *Handler) Routes(mux api.Mux) {
	admin := h.keys.Require(auth.Admin)
	user := h.keys.Require(auth.User)
	userOrStaff := h.keys.Require(auth.User, auth.Support)
	mux.Handle("POST /v1/users", admin(http.HandlerFunc(h.create)))
	// Global Privacy Control: PATCH folds it into its own write; erasure
	// outdoes it; every other request of the data subject honours it first.
	mux.Handle("GET /v1/users/{id}", userOrStaff(h.guard(readAccess, h.gpcFirst(h.get))))
	mux.Handle("PATCH /v1/users/{id}", user(h.guard(writeAccess, h.patch)))
	mux.Handle("DELETE /v1/users/{id}", user(h.guard(writeAccess, h.erase)))
	mux.Handle("GET /v1/users/{id}/export", user(h.guard(subjectOnly, h.gpcFirst(h.export))))
	mux.Handle("POST /v1/users/{id}/link", user(h.guard(subjectOnly, h.gpcFirst(h.issueLink))))
	for _, k := range []Kind{KindPhoto, KindResume} {
		mux.Handle("PUT /v1/users/{id}/"+string(k), user(h.guard(writeAccess, h.gpcFirst(h.putMedia(k)))))
		mux.Handle("DELETE /v1/users/{id}/"+string(k), user(h.guard(writeAccess, h.gpcFirst(h.deleteMedia(k)))))
		mux.Handle("GET /v1/users/{id}/"+string(k), userOrStaff(h.guard(readAccess, h.gpcFirst(h.getMedia(k)))))
	}
	mux.HandleFunc("GET /v1/profiles", h.search)
	mux.HandleFunc("GET /v1/profiles/{id}", h.public)
	mux.HandleFunc("GET /v1/profiles/{id}/photo", h.publicPhoto)
}

type access int

const (
	readAccess  access = iota // the data subject; support and admin, audit-logged (P7)
	writeAccess               // the data subject; admin, audit-logged
	subjectOnly               // the data subject alone
)

// guard lets the data subject through, and staff as a allows, with the read
// in the audit log before anything is served.
func (h *Handler) guard(a access, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		id := r.PathValue("id")
		switch {
		case p.Role == auth.User && p.Owner == id:
			next(w, r)
			return
		case p.Role == auth.Admin && a != subjectOnly, p.Role == auth.Support && a == readAccess:
			if err := h.keys.Audit().Read(r.Context(), p, r.Method, r.URL.Path, []string{id}); err != nil {
				h.log.Error("profiles: audit write failed", "err", err)
				api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the audit log cannot be written now; retry")
				return
			}
			next(w, r)
			return
		}
		h.keys.Forbid(w, r, r.Method+" "+r.URL.Path)
	})
}

func source(r *http.Request) string {
	p, _ := auth.FromContext(r.Context())
	return "api:" + p.KeyID
}

// ownerView is the account as its owner sees it.
type ownerView struct {
	*Profile
	Visibility      map[Field]Visibility `json:"visibility"`
	ConsentsInForce map[Purpose]bool     `json:"consents_in_force"`
}

func owner(p *Profile) ownerView {
	return ownerView{Profile: p, Visibility: visibility(p), ConsentsInForce: p.ConsentState()}
}

const bodyLimit = 64 << 10

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var pt Patch
	if !api.DecodeJSON(w, r, &pt, bodyLimit) {
		return
	}
	p, err := h.store.Create(r.Context(), &pt, source(r))
	if err != nil {
		h.fail(w, err)
		return
	}
	// The user's own key, shown once; without it the account is unusable, so
	// a failure takes the registration back.
	key, _, err := h.keys.Create(r.Context(), auth.User, p.ID, "user key")
	if err != nil {
		h.log.Error("profiles: user key not created", "user", p.ID, "err", err)
		if err := h.store.Erase(context.WithoutCancel(r.Context()), p.ID); err != nil {
			h.log.Error("profiles: registration not taken back", "user", p.ID, "err", err)
		}
		api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "could not register the user; retry")
		return
	}
	api.WriteJSON(w, http.StatusCreated, map[string]any{"user": owner(p), "key": key})
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	p, err := h.store.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, owner(p))
}

// patch applies a PATCH body. With GPC from the data subject, the
// withdrawal goes into the same write; a body that is refused still has GPC
// honoured, in a write of its own.
func (h *Handler) patch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var pt Patch
	if !api.DecodeJSON(w, r, &pt, bodyLimit) {
		h.gpcAlone(r, id)
		return
	}
	if purpose, ok := grantsGPCPurpose(r, &pt); ok {
		h.gpcAlone(r, id)
		api.WriteError(w, http.StatusConflict, "gpc_conflict", "consents."+string(purpose)+
			": this browser sends Global Privacy Control (Sec-GPC: 1), which asks not to share your data; grant it from a browser without it")
		return
	}
	var p *Profile
	var err error
	if subjectGPC(r, id) {
		if p, err = h.store.HonourGPC(r.Context(), id, &pt, source(r)); err != nil {
			h.gpcAlone(r, id)
		}
	} else {
		p, err = h.store.Patch(r.Context(), id, &pt, source(r))
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, owner(p))
}

func (h *Handler) erase(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.store.Erase(r.Context(), id); err != nil {
		h.fail(w, err)
		return
	}
	// The account's keys go with it.
	for _, k := range h.keys.List() {
		if k.Role == auth.User && k.Owner == id {
			if err := h.keys.Revoke(r.Context(), k.KeyID); err != nil {
				h.log.Error("profiles: key of an erased user not revoked", "user", id, "key", k.KeyID, "err", err)
			}
		}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"erased":  id,
		"message": "the profile, its media and the linked visitor record are deleted; partners that received data are being told to delete it",
	})
}

func (h *Handler) export(w http.ResponseWriter, r *http.Request) {
	x, err := h.store.Export(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="adsyn-export.json"`)
	api.WriteJSON(w, http.StatusOK, x)
}

// issueLink gives the signed-in user a link token for the browser to open
// on the edge (/link?t=TOKEN), which links that browser's own cookie.
func (h *Handler) issueLink(w http.ResponseWriter, r *http.Request) {
	token, exp, err := h.store.IssueLink(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	api.WriteJSON(w, http.StatusCreated, map[string]any{
		"token": token, "expires_at": exp, "path": "/link?t=" + token,
		"message": "open path on the ad server in the browser to link, within 10 minutes; it works once",
	})
}

func (h *Handler) putMedia(k Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, k.Limit()))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			api.WriteError(w, http.StatusRequestEntityTooLarge, "body_too_large", "a "+string(k)+" may be at most "+strconv.FormatInt(k.Limit(), 10)+" bytes")
			return
		}
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, "invalid_body", "the upload could not be read")
			return
		}
		p, err := h.store.PutMedia(r.Context(), r.PathValue("id"), k, data)
		if err != nil {
			h.fail(w, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, owner(p))
	}
}

func (h *Handler) deleteMedia(k Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.store.DeleteMedia(r.Context(), r.PathValue("id"), k)
		if err != nil {
			h.fail(w, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, owner(p))
	}
}

func (h *Handler) getMedia(k Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data, meta, err := h.store.Media(r.Context(), r.PathValue("id"), k)
		if err != nil {
			h.fail(w, err)
			return
		}
		writeFile(w, data, meta, "private, no-store")
	}
}

func writeFile(w http.ResponseWriter, data []byte, meta Media, cache string) {
	w.Header().Set("Content-Type", meta.Type)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	w.Header().Set("Cache-Control", cache)
	_, _ = w.Write(data)
}

func (h *Handler) public(w http.ResponseWriter, r *http.Request) {
	pub, err := h.store.GetPublic(r.Context(), r.PathValue("id"))
	if err == nil && pub.Empty() {
		err = ErrNotFound // nothing public: as if absent
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, pub)
}

func (h *Handler) publicPhoto(w http.ResponseWriter, r *http.Request) {
	data, meta, err := h.store.PublicPhoto(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("ETag", `"`+meta.Digest+`"`)
	writeFile(w, data, meta, "public, max-age=300")
}

// ParseQuery reads the search query string: name, city, competence (each at
// most 100 characters), limit (1-100) and offset (0-10000).
func ParseQuery(values map[string][]string) (Query, error) {
	get := func(k string) string {
		if v := values[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	var q Query
	for _, f := range []struct {
		key string
		dst *string
	}{{"name", &q.Name}, {"city", &q.City}, {"competence", &q.Competence}} {
		s := get(f.key)
		if len(s) > 400 || utf8.RuneCountInString(s) > 100 || !utf8.ValidString(s) {
			return Query{}, invalid(f.key, "must be at most 100 characters of UTF-8")
		}
		*f.dst = s
	}
	for _, f := range []struct {
		key      string
		dst      *int
		min, max int
	}{{"limit", &q.Limit, 1, 100}, {"offset", &q.Offset, 0, 10000}} {
		s := get(f.key)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < f.min || n > f.max {
			return Query{}, invalid(f.key, "must be an integer from "+strconv.Itoa(f.min)+" to "+strconv.Itoa(f.max))
		}
		*f.dst = n
	}
	return q, nil
}

func (h *Handler) search(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		h.fail(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"profiles": h.store.Search(q)})
}

// fail maps an error to its answer: 4xx for what the caller can fix, 503 when
// NATS is away.
func (h *Handler) fail(w http.ResponseWriter, err error) {
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		api.WriteError(w, http.StatusBadRequest, "invalid_field", fe.Field+": "+fe.Reason)
	case errors.Is(err, ErrNotFound):
		api.WriteError(w, http.StatusNotFound, "not_found", "no such user")
	case errors.Is(err, ErrNoMedia):
		api.WriteError(w, http.StatusNotFound, "not_found", "no such file")
	case errors.Is(err, ErrNoConsent):
		api.WriteError(w, http.StatusConflict, "consent_required", err.Error())
	case errors.Is(err, ErrMediaType):
		api.WriteError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", err.Error())
	case errors.Is(err, ErrMediaSize):
		api.WriteError(w, http.StatusRequestEntityTooLarge, "body_too_large", err.Error())
	case errors.Is(err, ErrConflict):
		api.WriteError(w, http.StatusConflict, "conflict", "the profile changed meanwhile; retry")
	default:
		h.log.Error("profiles: request failed", "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the profile store is unavailable; retry")
	}
}
