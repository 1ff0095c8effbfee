package auth

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/adsyn/adsyn/internal/api"
)

// Routes registers key management and the audit log (admin only).
func (k *Keys) Routes(mux api.Mux) {
	admin := k.Require(Admin)
	mux.Handle("POST /v1/keys", admin(http.HandlerFunc(k.createKey)))
	mux.Handle("GET /v1/keys", admin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]any{"keys": k.List()})
	})))
	mux.Handle("DELETE /v1/keys/{id}", admin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch err := k.Revoke(r.Context(), r.PathValue("id")); {
		case errors.Is(err, ErrNotFound):
			api.WriteError(w, http.StatusNotFound, "not_found", "no key "+r.PathValue("id"))
		case err != nil:
			api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "could not revoke the key; retry")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})))
	mux.Handle("GET /v1/audit", admin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := 100
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 1000 {
				api.WriteError(w, http.StatusBadRequest, "invalid_limit", "limit must be 1-1000")
				return
			}
			limit = n
		}
		entries, err := k.audit.Recent(r.Context(), limit)
		if err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the audit log cannot be read now; retry")
			return
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{"entries": entries})
	})))
}

func (k *Keys) createKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Role  Role   `json:"role"`
		Owner string `json:"owner"`
		Name  string `json:"name"`
	}
	if !api.DecodeJSON(w, r, &req, 4<<10) {
		return
	}
	secret, p, err := k.Create(r.Context(), req.Role, req.Owner, req.Name)
	switch {
	case errors.Is(err, ErrBadRole):
		api.WriteError(w, http.StatusBadRequest, "invalid_role", "role must be one of admin, marketer, publisher, partner, support, user, telephony")
	case errors.Is(err, ErrNoOwner):
		api.WriteError(w, http.StatusBadRequest, "missing_owner", "a "+string(req.Role)+" key needs an owner (advertiser, publisher, partner or user id)")
	case err != nil:
		api.WriteError(w, http.StatusServiceUnavailable, "unavailable", "could not store the key; retry")
	default:
		api.WriteJSON(w, http.StatusCreated, map[string]any{"key": secret, "principal": p})
	}
}
