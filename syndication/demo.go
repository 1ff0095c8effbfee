package syndication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication/webhook"
)

// DemoID is the id of the demo partner.
const DemoID = "demo"

// Demo is a partner site in a box: it receives webhooks on the API port,
// verifies their signatures with its secret, keeps what it was sent and
// shows it at GET /demo/partner. Mount it on both "/demo/partner" and
// "/demo/partner/".
type Demo struct {
	key []byte
	log *slog.Logger

	mu       sync.Mutex
	held     map[string]demoEntry // user → newest view
	recent   []demoEvent          // newest first
	seen     map[string]bool      // webhook-ids, to drop duplicates
	verified int
	rejected int
}

type demoEntry struct {
	Version uint64
	View    View
	At      time.Time
}

type demoEvent struct {
	At      time.Time
	ID      string
	Type    string
	User    string
	Version uint64
}

// DemoSetup registers (or updates) the demo partner so that it receives on
// baseURL (the API's own address, e.g. "http://127.0.0.1:8081"), with every
// field a contract may list, and returns its receiver.
func DemoSetup(ctx context.Context, reg *Registry, baseURL string, log *slog.Logger) (*Demo, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	endpoint := strings.TrimRight(baseURL, "/") + "/demo/partner/webhook"
	name := "Demo partner"
	fields := slices.Clone(profiles.PublicFields)
	p, ok := reg.Get(DemoID)
	var err error
	if !ok {
		p, err = reg.Create(ctx, &Spec{ID: DemoID, Name: &name, URL: &endpoint, Fields: fields})
	} else if p.URL != endpoint || p.State != StateActive {
		p, err = reg.Update(ctx, DemoID, &Spec{URL: &endpoint, State: StateActive})
	}
	if err != nil && !errors.Is(err, ErrExists) {
		return nil, fmt.Errorf("syndication: demo partner: %w", err)
	}
	if p.Secret == "" { // lost a creation race: read what the other process made
		p, _ = reg.Get(DemoID)
	}
	key, err := webhook.ParseSecret(p.Secret)
	if err != nil {
		return nil, fmt.Errorf("syndication: demo partner: %w", err)
	}
	return &Demo{key: key, log: log, held: map[string]demoEntry{}, seen: map[string]bool{}}, nil
}

func (d *Demo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		d.receive(w, r)
	case http.MethodGet, http.MethodHead:
		d.page(w)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (d *Demo) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err := webhook.Verify(d.key, r.Header, body, time.Now()); err != nil {
		d.mu.Lock()
		d.rejected++
		d.mu.Unlock()
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	var env envelope
	var view View
	if json.Unmarshal(body, &env) != nil || json.Unmarshal(env.Data, &view) != nil || !profiles.ValidID(view.ID) {
		http.Error(w, "unexpected body", http.StatusBadRequest)
		return
	}
	id := r.Header.Get(webhook.HeaderID)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.verified++
	if d.seen[id] {
		w.WriteHeader(http.StatusNoContent) // a retry of what we have
		return
	}
	if len(d.seen) > 100000 {
		clear(d.seen)
	}
	d.seen[id] = true
	if cur, ok := d.held[view.ID]; !ok || cur.Version <= view.Version {
		if env.Type == TypeDeleted {
			delete(d.held, view.ID)
		} else {
			d.held[view.ID] = demoEntry{Version: view.Version, View: view, At: time.Now()}
		}
	}
	d.recent = append([]demoEvent{{At: time.Now(), ID: id, Type: env.Type, User: view.ID, Version: view.Version}}, d.recent...)
	if len(d.recent) > 50 {
		d.recent = d.recent[:50]
	}
	w.WriteHeader(http.StatusNoContent)
}

// Held returns what the demo partner holds, by user id.
func (d *Demo) Held() map[string]View {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]View, len(d.held))
	for id, e := range d.held {
		out[id] = e.View
	}
	return out
}

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>adsyn demo partner</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f4f4f4}small{color:#666}</style></head>
<body><h1>Demo partner</h1>
<p>This page stands for a partner site. It shows what adsyn syndicated to it: signed webhooks
(Standard Webhooks), verified with the partner's secret. Verified: {{.Verified}}; rejected: {{.Rejected}}.</p>
<h2>Profiles held ({{len .Held}})</h2>
<table><tr><th>id</th><th>version</th><th>name</th><th>city</th><th>competence</th><th>price</th><th>language</th><th>photo</th></tr>
{{range .Held}}<tr><td>{{.ID}}</td><td>{{.Version}}</td><td>{{.Name}}</td><td>{{.City}}</td><td>{{range $i, $c := .Competence}}{{if $i}}, {{end}}{{$c}}{{end}}</td>
<td>{{with .Price}}{{.Amount}} {{.Currency}}{{end}}</td><td>{{.Language}}</td><td>{{with .Photo}}<a href="{{.URL}}">photo</a>{{end}}</td></tr>
{{else}}<tr><td colspan="8"><small>nothing yet</small></td></tr>{{end}}</table>
<h2>Recent events</h2>
<table><tr><th>time</th><th>type</th><th>user</th><th>version</th><th>webhook-id</th></tr>
{{range .Recent}}<tr><td>{{.At.Format "15:04:05.000"}}</td><td>{{.Type}}</td><td>{{.User}}</td><td>{{.Version}}</td><td><small>{{.ID}}</small></td></tr>
{{else}}<tr><td colspan="5"><small>nothing yet</small></td></tr>{{end}}</table>
</body></html>`))

func (d *Demo) page(w http.ResponseWriter) {
	d.mu.Lock()
	data := struct {
		Verified, Rejected int
		Held               []View
		Recent             []demoEvent
	}{Verified: d.verified, Rejected: d.rejected, Recent: slices.Clone(d.recent)}
	for _, e := range d.held {
		data.Held = append(data.Held, e.View)
	}
	d.mu.Unlock()
	slices.SortFunc(data.Held, func(a, b View) int { return strings.Compare(a.ID, b.ID) })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src *")
	if err := demoPage.Execute(w, data); err != nil {
		d.log.Error("syndication: demo page", "err", err)
	}
}
