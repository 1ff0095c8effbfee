package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// DefaultBodyLimit bounds every JSON request body unless a route says otherwise.
const DefaultBodyLimit = 1 << 20

// ErrorBody is the JSON shape of every API error.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}

// WriteError writes the error body. code is a stable snake_case word; message
// says what was wrong and, where it helps, what to do.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	var b ErrorBody
	b.Error.Code = code
	b.Error.Message = message
	WriteJSON(w, status, b)
}

// DecodeJSON decodes r's body into v: at most limit bytes (DefaultBodyLimit
// when 0), JSON only, no unknown fields, one value. On failure it writes the
// 4xx and returns false.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	if limit <= 0 {
		limit = DefaultBodyLimit
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			WriteError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json")
			return false
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			WriteError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body exceeds %d bytes", limit))
		case errors.Is(err, io.EOF):
			WriteError(w, http.StatusBadRequest, "empty_body", "the request needs a JSON body")
		case errors.As(err, &syn):
			WriteError(w, http.StatusBadRequest, "invalid_json", fmt.Sprintf("invalid JSON at byte %d", syn.Offset))
		case errors.As(err, &typ):
			WriteError(w, http.StatusBadRequest, "invalid_field", fmt.Sprintf("field %q must be %s", typ.Field, typ.Type))
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			WriteError(w, http.StatusBadRequest, "unknown_field", strings.TrimPrefix(err.Error(), "json: "))
		default:
			WriteError(w, http.StatusBadRequest, "invalid_json", err.Error())
		}
		return false
	}
	if dec.More() {
		WriteError(w, http.StatusBadRequest, "invalid_json", "the body must hold one JSON value")
		return false
	}
	return true
}

// NotFound answers unknown routes with the JSON error body.
func NotFound(w http.ResponseWriter, r *http.Request) {
	WriteError(w, http.StatusNotFound, "not_found", "no such resource: "+r.URL.Path)
}
