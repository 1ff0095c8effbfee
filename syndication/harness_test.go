package syndication_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/syndication"
	"github.com/adsyn/adsyn/syndication/webhook"
)

// verifySpec is an independent Standard Webhooks verifier written from the
// specification, sharing no code with the package under test.
func verifySpec(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return err
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp too far")
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, s := range strings.Split(sigs, " ") {
		if v, sig, ok := strings.Cut(s, ","); ok && v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no matching signature")
}

// behaviour decides how a receiver answers request n (1-based); it may
// write the answer itself and return true.
type behaviour func(n int, w http.ResponseWriter, r *http.Request) bool

func ok() behaviour { return func(int, http.ResponseWriter, *http.Request) bool { return false } }

func status(code, first int) behaviour {
	return func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n > first {
			return false
		}
		w.WriteHeader(code)
		return true
	}
}

func hang(first int) behaviour {
	return func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n > first {
			return false
		}
		<-r.Context().Done() // until the sender gives up
		return true
	}
}

func hangUp(first int) behaviour {
	return func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n > first {
			return false
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	}
}

type held struct {
	view    syndication.View
	version uint64 // newest version seen, deletions included
	deleted bool
}

// receiver is a partner endpoint that verifies, keeps what it holds, checks
// the order per user and captures every byte it was sent.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu       sync.Mutex
	behave   behaviour
	n        int
	capture  bytes.Buffer
	users    map[string]*held
	problems []string
	accepted int
}

func newReceiver(t *testing.T, b behaviour) *receiver {
	rc := &receiver{t: t, behave: b, users: map[string]*held{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setBehaviour(b behaviour) {
	rc.mu.Lock()
	rc.behave, rc.n = b, 0
	rc.mu.Unlock()
}

var signatureLine = regexp.MustCompile(`(?m)^Webhook-Signature: .*$`)

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	dump, _ := httputil.DumpRequest(r, true)
	// The signature is random base64, which can spell a mark by chance ("PDF").
	dump = signatureLine.ReplaceAll(dump, []byte("Webhook-Signature: (checked)"))
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.capture.Write(dump)
	rc.n++
	n, b, secret := rc.n, rc.behave, rc.secret
	rc.mu.Unlock()
	if b(n, w, r) {
		return
	}
	if err := verifySpec(secret, r.Header, body, time.Now()); err != nil {
		rc.problem("signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err := webhook.Verify(mustKey(secret), r.Header, body, time.Now()); err != nil {
		rc.problem("package verifier disagrees: %v", err)
	}
	var env struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	var v syndication.View
	if err := json.Unmarshal(body, &env); err != nil || json.Unmarshal(env.Data, &v) != nil {
		rc.problem("body %s", body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.accepted++
	h := rc.users[v.ID]
	if h == nil {
		h = &held{}
		rc.users[v.ID] = h
	}
	if v.Version < h.version {
		rc.problems = append(rc.problems, fmt.Sprintf("user %s: version %d (%s) after %d", v.ID, v.Version, env.Type, h.version))
	}
	h.version = max(h.version, v.Version)
	switch env.Type {
	case syndication.TypeUpserted:
		h.view, h.deleted = v, false
	case syndication.TypeDeleted:
		h.view, h.deleted = syndication.View{}, true
	default:
		rc.problems = append(rc.problems, "type "+env.Type)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) problem(format string, args ...any) {
	rc.mu.Lock()
	rc.problems = append(rc.problems, fmt.Sprintf(format, args...))
	rc.mu.Unlock()
}

func mustKey(secret string) []byte {
	k, err := webhook.ParseSecret(secret)
	if err != nil {
		panic(err)
	}
	return k
}

// holds returns the views the receiver holds now, by user.
func (rc *receiver) holds() map[string]syndication.View {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]syndication.View{}
	for id, h := range rc.users {
		if !h.deleted && h.view.ID != "" {
			out[id] = h.view
		}
	}
	return out
}

func (rc *receiver) captured() []byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return bytes.Clone(rc.capture.Bytes())
}

// env is a NATS server with a profile store and a partner registry.
type env struct {
	t      *testing.T
	srv    *bustest.Server
	conn   *bus.Conn
	ctx    context.Context
	store  *profiles.Store
	ring   *keyring.Keyring
	reg    *syndication.Registry
	led    *syndication.Ledger
	opts   []syndication.RegistryOption
	wopts  []syndication.WorkerOption
	public string
	regs   []*syndication.Registry // the workers' registries
}

func newEnv(t *testing.T, extra ...syndication.SharedOption) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv := bustest.StartServer(t)
	conn := srv.Connect(t)
	ring, err := keyring.Parse(keyring.NewKeyLine(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	store, err := profiles.NewStore(ctx, conn.JS, ring)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, conn: conn, ctx: ctx, store: store, ring: ring, public: "https://api.example.test"}
	shared := append([]syndication.SharedOption{
		syndication.WithTimeout(300 * time.Millisecond),
		syndication.WithTakeover(time.Second),
		syndication.WithKeyring(ring),
		syndication.WithPrivatePartners(true), // the receivers are on loopback
	}, extra...)
	e.opts = []syndication.RegistryOption{syndication.WithShards(4)}
	e.wopts = []syndication.WorkerOption{
		syndication.WithBackoff(syndication.Backoff{Base: 5 * time.Millisecond, Max: 40 * time.Millisecond, Attempts: 8}),
		syndication.WithPublicURL(e.public),
	}
	for _, o := range shared {
		e.opts, e.wopts = append(e.opts, o), append(e.wopts, o)
	}
	if e.reg, err = syndication.NewRegistry(ctx, conn.JS, e.opts...); err != nil {
		t.Fatal(err)
	}
	if e.led, err = syndication.NewLedger(ctx, conn.JS, e.reg); err != nil {
		t.Fatal(err)
	}
	return e
}

// worker starts a worker on its own connection; the returned func stops it
// and waits.
func (e *env) worker() (stop func()) {
	e.t.Helper()
	conn := e.srv.Connect(e.t)
	ctx, cancel := context.WithCancel(e.ctx)
	reg, err := syndication.NewRegistry(ctx, conn.JS, e.opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	led, err := syndication.NewLedger(ctx, conn.JS, reg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.regs = append(e.regs, reg)
	profs, err := profiles.NewReader(ctx, conn.JS, e.ring)
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := syndication.NewWorker(ctx, conn.JS, reg, led, append(slices.Clone(e.wopts), syndication.WithProfiles(profs))...)
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("worker: %v", err)
				}
			case <-time.After(10 * time.Second):
				var b strings.Builder
				_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
				e.t.Errorf("worker did not stop within 10s:\n%s", b.String())
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

func (e *env) partner(id string, rc *receiver, fields ...profiles.Field) syndication.Partner {
	e.t.Helper()
	url := ""
	if rc != nil {
		url = rc.srv.URL + "/hook"
	}
	p, err := e.reg.Create(e.ctx, &syndication.Spec{ID: id, URL: &url, Fields: fields})
	if err != nil {
		e.t.Fatal(err)
	}
	if rc != nil {
		rc.mu.Lock()
		rc.secret = p.Secret
		rc.mu.Unlock()
	}
	return p
}

func (e *env) user(body string) *profiles.Profile {
	e.t.Helper()
	var pt profiles.Patch
	if err := json.Unmarshal([]byte(body), &pt); err != nil {
		e.t.Fatal(err)
	}
	p, err := e.store.Create(e.ctx, &pt, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) patch(id, body string) {
	e.t.Helper()
	var pt profiles.Patch
	if err := json.Unmarshal([]byte(body), &pt); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.Patch(e.ctx, id, &pt, "test"); err != nil {
		e.t.Fatal(err)
	}
}

// expected is what a partner with contract c must hold now: the view of
// every existing user whose view is not empty.
func (e *env) expected(c syndication.Contract) map[string]syndication.View {
	e.t.Helper()
	kv, _ := e.conn.JS.KeyValue(e.ctx, bus.BucketProfiles)
	out := map[string]syndication.View{}
	keys, err := kv.ListKeys(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for id := range keys.Keys() {
		entry, err := kv.Get(e.ctx, id)
		if err != nil {
			continue
		}
		p, err := e.store.Decode(e.ctx, entry.Value())
		if err != nil {
			e.t.Fatal(err)
		}
		if v := syndication.Build(p, c, e.public); !v.Empty() {
			out[id] = v
		}
	}
	return out
}

// converged reports whether rc holds exactly want (versions aside).
func converged(rc *receiver, want map[string]syndication.View) (bool, string) {
	got := rc.holds()
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			return false, "missing " + id
		}
		if g.Hash() != w.Hash() {
			return false, fmt.Sprintf("stale %s: %+v, want %+v", id, g, w)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			return false, "still holds " + id
		}
	}
	return true, ""
}

// eventually polls cond until the deadline.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v: %s", what, d, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
