package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeJSONErrors(t *testing.T) {
	type body struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	for _, tc := range []struct {
		body, contentType string
		status            int
		code              string
	}{
		{`{"name":"a","n":1}`, "application/json", 200, ""},
		{``, "application/json", 400, "empty_body"},
		{`{"name":`, "application/json", 400, "invalid_json"},
		{`{"n":"x"}`, "application/json", 400, "invalid_field"},
		{`{"extra":1}`, "application/json", 400, "unknown_field"},
		{`{"name":"a"} {"name":"b"}`, "", 400, "invalid_json"},
		{`{"name":"` + strings.Repeat("a", 200) + `"}`, "", 413, "body_too_large"},
		{`name=a`, "application/x-www-form-urlencoded", 415, "unsupported_media_type"},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		if tc.contentType != "" {
			r.Header.Set("Content-Type", tc.contentType)
		}
		var b body
		ok := DecodeJSON(w, r, &b, 100)
		if ok != (tc.status == 200) {
			t.Errorf("%q: ok=%v", tc.body, ok)
		}
		if tc.status != 200 {
			if w.Code != tc.status || !strings.Contains(w.Body.String(), `"code":"`+tc.code+`"`) {
				t.Errorf("%q: %d %s, want %d %s", tc.body, w.Code, w.Body.String(), tc.status, tc.code)
			}
		}
	}
}

func TestNotFound(t *testing.T) {
	w := httptest.NewRecorder()
	NotFound(w, httptest.NewRequest("GET", "/v1/x", nil))
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `"error":{"code":"not_found"`) {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}
