// Package apitest holds API tests to the OpenAPI document (api.OpenAPI):
// Client and Transport validate every request a test sends and every answer
// it gets with openapi3filter, so the document cannot drift from the code.
// For tests only; production code never imports it.
//
// With ADSYN_OPENAPI_SEEN=FILE set, every validated exchange is appended to
// FILE as "METHOD /path/template STATUS", to see which operations and answers
// the tests exercise.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/adsyn/adsyn/internal/api"
)

// NotTheAPI are the API port's patterns that are not the JSON API, and so
// not in the document: the JSON 404 for every other path, and the demo's
// stand-in partner site (--demo), which Transport lets through unchecked.
var NotTheAPI = []string{"/", demoPartner, demoPartner + "/"}

const demoPartner = "/demo/partner"

var (
	loadOnce sync.Once
	router   routers.Router
	loadErr  error
)

// Document returns the parsed OpenAPI document.
func Document() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("apitest: load the OpenAPI document: %w", err)
	}
	return doc, nil
}

func load() (routers.Router, error) {
	loadOnce.Do(func() {
		// Files the API answers with: read as bytes, their schema is {}.
		for _, ct := range []string{"image/jpeg", "image/png", "image/webp", "application/pdf", "text/html"} {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
		}
		doc, err := Document()
		if err != nil {
			loadErr = err
			return
		}
		// Tests listen on random loopback ports: match paths on any host.
		doc.Servers = nil
		router, loadErr = legacy.NewRouter(doc)
	})
	return router, loadErr
}

// Client returns an HTTP client whose requests and answers are validated
// against the document; a mismatch fails t.
func Client(t testing.TB) *http.Client {
	return &http.Client{Transport: Transport(t, nil)}
}

// Transport wraps next (http.DefaultTransport when nil) with validation:
//   - a request to a route the document lacks must be answered with a 4xx
//     JSON error;
//   - a request the document refuses must not succeed: the server must be at
//     least as strict as the document says;
//   - every answer must match the operation's documented status, headers and
//     body.
func Transport(t testing.TB, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{t: t, next: next}
}

type transport struct {
	t    testing.TB
	next http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == demoPartner || strings.HasPrefix(req.URL.Path, demoPartner+"/") {
		return tr.next.RoundTrip(req)
	}
	rt, err := load()
	if err != nil {
		tr.t.Errorf("%v", err)
		return tr.next.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil {
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	check := req.Clone(context.Background())
	check.Body = io.NopCloser(bytes.NewReader(reqBody))
	what := req.Method + " " + req.URL.Path

	route, params, routeErr := rt.FindRoute(check)
	var in *openapi3filter.RequestValidationInput
	var reqErr error
	if routeErr == nil {
		defaultContentType(check, route.Operation, len(reqBody) > 0)
		in = &openapi3filter.RequestValidationInput{
			Request: check, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: bearer, RejectWhenRequestBodyNotSpecified: true},
		}
		reqErr = openapi3filter.ValidateRequest(context.Background(), in)
	}

	res, err := tr.next.RoundTrip(req)
	if err != nil {
		return res, err
	}
	resBody, err := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	if err != nil {
		return res, err
	}

	if routeErr != nil {
		if res.StatusCode < 400 || res.StatusCode >= 500 {
			tr.t.Errorf("openapi: %s is not in the document (%v), yet answered %d", what, routeErr, res.StatusCode)
		} else if err := errorBody(res.Header, resBody); err != nil {
			tr.t.Errorf("openapi: %s (not in the document) answered %d: %v", what, res.StatusCode, err)
		}
		return res, nil
	}
	if reqErr != nil && res.StatusCode < 400 {
		tr.t.Errorf("openapi: the document refuses %s, yet the server answered %d: %v", what, res.StatusCode, reqErr)
	}
	seen(route.Method+" "+route.Path, res.StatusCode)
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	out.SetBodyBytes(resBody)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		tr.t.Errorf("openapi: the answer %d to %s does not match the document: %v\nbody: %.500s", res.StatusCode, what, err, resBody)
	}
	return res, nil
}

var seenMu sync.Mutex

func seen(op string, status int) {
	file := os.Getenv("ADSYN_OPENAPI_SEEN")
	if file == "" {
		return
	}
	seenMu.Lock()
	defer seenMu.Unlock()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return // a tally only; validation goes on
	}
	fmt.Fprintf(f, "%s %d\n", op, status)
	f.Close()
}

// defaultContentType gives a body sent without Content-Type the type the
// server reads it as: JSON bodies are decoded as JSON, uploads sniffed from
// their bytes (the document's info says so).
func defaultContentType(req *http.Request, op *openapi3.Operation, hasBody bool) {
	if !hasBody || req.Header.Get("Content-Type") != "" || op.RequestBody == nil || op.RequestBody.Value == nil {
		return
	}
	for _, ct := range []string{"application/json", "application/octet-stream"} {
		if op.RequestBody.Value.Content.Get(ct) != nil {
			req.Header.Set("Content-Type", ct)
			return
		}
	}
}

// bearer checks that a bearer key was sent; whether it is good is the
// server's to say.
func bearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme == nil || in.SecurityScheme.Type != "http" || !strings.EqualFold(in.SecurityScheme.Scheme, "bearer") {
		return fmt.Errorf("unexpected security scheme %q", in.SecuritySchemeName)
	}
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if len(h) < 8 || !strings.EqualFold(h[:7], "bearer ") || strings.TrimSpace(h[7:]) == "" {
		return errors.New("no Authorization: Bearer <key>")
	}
	return nil
}

// errorBody checks the JSON error shape of the API.
func errorBody(h http.Header, body []byte) error {
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("content type %q, want application/json", h.Get("Content-Type"))
	}
	var e api.ErrorBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		return fmt.Errorf("not an error body: %.200s", body)
	}
	return nil
}
