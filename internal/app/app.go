package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/adserver"
	"github.com/adsyn/adsyn/internal/api"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/buildinfo"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/privacy"
	"github.com/adsyn/adsyn/internal/profiles"
	"github.com/adsyn/adsyn/internal/stats"
	"github.com/adsyn/adsyn/pixel"
	"github.com/adsyn/adsyn/segments"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// App is one adsyn process.
type App struct {
	cfg config.Config
	log *slog.Logger
	out io.Writer // where first-start keys are printed
	reg *metrics.Registry

	embedded *bus.Embedded
	conn     *bus.Conn
	pub      *bus.Publisher
	keys     *auth.Keys
	ring     *keyring.Keyring // the master keyring (--profile-keys)

	edgeLn, apiLn net.Listener
	edge          *fasthttp.Server
	api           *http.Server
	mux           *api.Router
	routes        map[string]fasthttp.RequestHandler
	adEdge        *adserver.Edge
	catalog       *adserver.Catalog
	numbers       *stats.TrackingNumbers[*adserver.Snapshot]
	geo           *adserver.Geo
	visitors      *segments.KVStore
	profiles      *profiles.Store
	profileReader *profiles.Reader // nil on an edge without the profile keys
	taxonomy      *taxonomy.Live
	workers       sync.WaitGroup

	ready   atomic.Bool
	failed  atomic.Value // string: the first worker that stopped on an error
	runCtx  context.Context
	cancel  context.CancelFunc
	stops   []func(context.Context) error // workers, stopped in reverse order
	serving chan error
}

// New validates cfg and returns an App ready to Start.
func New(cfg config.Config, log *slog.Logger, out io.Writer) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if out == nil {
		out = io.Discard
	}
	reg := metrics.NewProcessRegistry()
	b := buildinfo.Read()
	reg.BuildInfo(b.Version, b.Revision, b.GoVersion)
	return &App{cfg: cfg, log: log, out: out, reg: reg, routes: map[string]fasthttp.RequestHandler{}, serving: make(chan error, 2)}, nil
}

// Metrics is the process's registry.
func (a *App) Metrics() *metrics.Registry { return a.reg }

// Conn is the NATS connection (after Start).
func (a *App) Conn() *bus.Conn { return a.conn }

// Publisher is the edge's event publisher (after Start, with the edge role).
func (a *App) Publisher() *bus.Publisher { return a.pub }

// APIRoutes lists the patterns registered on the API port (after Start).
func (a *App) APIRoutes() []string {
	if a.mux == nil {
		return nil
	}
	return a.mux.Patterns()
}

// EdgeAddr is the edge's listening address (after Start).
func (a *App) EdgeAddr() string { return addr(a.edgeLn) }

// APIAddr is the API's listening address (after Start).
func (a *App) APIAddr() string { return addr(a.apiLn) }

func addr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// Start brings the process up and returns once it serves.
func (a *App) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = a.Stop(stopCtx)
			cancel()
		}
	}()
	a.runCtx, a.cancel = context.WithCancel(context.Background())
	if err := a.startNATS(ctx); err != nil {
		return err
	}
	// The key watch lives as long as the process, not the start-up deadline.
	keys, err := auth.NewKeys(a.runCtx, a.conn.JS, a.log)
	if err != nil {
		return err
	}
	a.keys = keys
	if a.cfg.Has(config.RoleEdge) {
		pub, err := bus.NewPublisher(a.conn.NC, bus.PublisherOptions{Partitions: a.cfg.Partitions, Privacy: a.privacy(), Log: a.log, Metrics: a.reg,
			BufferBytes: int64(a.cfg.EventBufferMB) << 20})
		if err != nil {
			return fmt.Errorf("app: publisher: %w", err)
		}
		a.pub = pub
	}
	// Every process holds the master keyring: the click-token key and the
	// webhook secrets are sealed with it.
	if a.ring, err = a.keyring(); err != nil {
		return err
	}
	a.mux = api.NewRouter()
	// Listen first: wiring needs the real addresses (the demo partner
	// receives on the API port); serve once everything is wired.
	if err := a.listen(); err != nil {
		return err
	}
	if err := a.wire(a.runCtx); err != nil {
		return err
	}
	if err := a.firstStart(ctx); err != nil {
		return err
	}
	if a.edgeLn != nil {
		a.serveEdge()
	}
	if a.apiLn != nil {
		a.serveAPI()
	}
	a.ready.Store(true)
	a.log.Info("adsyn serving", "edge", a.EdgeAddr(), "api", a.APIAddr(), "roles", a.cfg.Roles, "nats", a.conn.NC.ConnectedUrlRedacted())
	return nil
}

func (a *App) startNATS(ctx context.Context) error {
	// A cluster may be recovering: wait for it as long as the start may
	// take. The embedded server is this process's own.
	connectCtx := ctx
	if a.cfg.NATSURLs == "" {
		var cancel context.CancelFunc
		connectCtx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	if err := a.dialNATS(connectCtx); err != nil {
		return err
	}
	c := a.conn
	res := bus.DefaultResources()
	res.Replicas = a.cfg.Replicas
	res.Retention = a.cfg.Retention
	res.SegmentsTTL = a.cfg.SegmentTTL
	res.StatsRetention = a.cfg.StatsRetention
	if err := bus.ProvisionRetry(connectCtx, c.JS, res, a.log); err != nil {
		return err
	}
	a.reg.Gauge("adsyn_nats_connected", "1 while the NATS connection is up.", func() float64 {
		if a.conn.Connected() {
			return 1
		}
		return 0
	})
	a.reg.CounterFunc("adsyn_nats_reconnects_total", "NATS reconnections since start.", func() float64 { return float64(a.conn.NC.Stats().Reconnects) })
	a.reg.CounterFunc("adsyn_nats_disconnections_total", "NATS connection losses since start.", func() float64 { return float64(a.conn.Disconnections()) })
	a.reg.Gauge("adsyn_nats_down_seconds", "How long the NATS connection has been down; 0 while it is up.", func() float64 { return a.conn.Down().Seconds() })
	return nil
}

// dialNATS starts the embedded server on the data directory, unless
// --nats names a cluster, and connects to it. adsyn keys comes in here too.
func (a *App) dialNATS(ctx context.Context) error {
	urls, creds := Credentials(a.cfg, ReadWrite)
	opts := []bus.ConnectOption{bus.WithCredentials(creds), bus.WithLogger(a.log)}
	if a.cfg.NATSURLs == "" {
		dir := filepath.Join(a.cfg.DataDir, "nats")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("app: data directory: %w (set --data to a writable directory)", err)
		}
		users, err := bus.EnsureUsers(a.cfg.DataDir)
		if err != nil {
			return err
		}
		e, err := bus.StartEmbedded(dir, a.cfg.NATSListen, bus.WithUsers(users))
		if err != nil {
			return err
		}
		a.embedded = e
		urls = e.URL()
		opts = append(opts, bus.InProcess(e))
	}
	c, err := bus.Connect(ctx, urls, "adsyn", opts...)
	if err != nil {
		return err
	}
	a.conn = c
	return nil
}

// privacy is the operator's settings of the event choke point (P6 prefixes).
func (a *App) privacy() privacy.Options {
	return privacy.Options{IPv4Bits: a.cfg.IPv4Bits, IPv6Bits: a.cfg.IPv6Bits, Exact: true}
}

// health is nil while the process can do its job: NATS connected, or
// reconnecting for less than --nats-down-limit.
func (a *App) health() error {
	if a.conn == nil {
		return nil // starting: readiness says so
	}
	return a.conn.Health(a.cfg.NATSDownLimit)
}

// consentPolicy is the operator's consent settings.
func (a *App) consentPolicy() consent.Policy {
	return consent.Policy{VendorID: a.cfg.TCFVendorID, GDPRByDefault: a.cfg.GDPRByDefault}
}

func (a *App) cookies() pixel.Cookies {
	return pixel.Cookies{Secure: a.cfg.SecureCookies, Partitioned: a.cfg.PartitionedCookies,
		Domain: a.cfg.CookieDomain, TrustedProxies: a.cfg.TrustedProxies}
}

// firstStart makes an admin key when there is none and prints it once.
func (a *App) firstStart(ctx context.Context) error {
	if !a.cfg.Has(config.RoleAPI) || len(a.keys.List()) > 0 {
		return nil
	}
	roles := []auth.Role{auth.Admin}
	owners := map[auth.Role]string{}
	if a.cfg.Demo {
		roles = []auth.Role{auth.Admin, auth.Marketer, auth.Publisher, auth.Partner, auth.Support, auth.Telephony}
		owners = demoOwners
	}
	fmt.Fprintln(a.out, "API keys (shown once; only their hashes are stored):")
	for _, r := range roles {
		secret, _, err := a.keys.Create(ctx, r, owners[r], "first start")
		if err != nil {
			return err
		}
		fmt.Fprintf(a.out, "  %-9s %s\n", r, secret)
	}
	return nil
}

func (a *App) listen() error {
	if a.cfg.Has(config.RoleEdge) {
		ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("app: edge: %w (is --http %s in use? choose another with --http)", err, a.cfg.HTTPAddr)
		}
		a.edgeLn = ln
	}
	if a.cfg.Has(config.RoleAPI) {
		ln, err := net.Listen("tcp", a.cfg.APIAddr)
		if err != nil {
			return fmt.Errorf("app: api: %w (is --api %s in use? choose another with --api)", err, a.cfg.APIAddr)
		}
		a.apiLn = ln
	}
	return nil
}

func (a *App) serveEdge() {
	a.edge = NewEdgeServer(a.edgeHandler, a.log)
	go func() { a.serving <- a.edge.Serve(a.edgeLn) }()
}

// NewEdgeServer is the edge's fasthttp server: bounded requests, timeouts,
// and the transparent GIF for anything it cannot parse. Benchmarks build
// their bare ceiling with it too, so that only the handler differs.
func NewEdgeServer(h fasthttp.RequestHandler, log *slog.Logger) *fasthttp.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &fasthttp.Server{
		Handler:               h,
		ErrorHandler:          pixel.ErrorHandler,
		Name:                  "adsyn",
		ReadBufferSize:        16 << 10,
		MaxRequestBodySize:    64 << 10,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           90 * time.Second,
		NoDefaultServerHeader: true,
		Logger:                slogPrinter{log},
	}
}

func (a *App) edgeHandler(ctx *fasthttp.RequestCtx) {
	if h, ok := a.routes[string(ctx.Path())]; ok {
		h(ctx)
		return
	}
	if a.adEdge != nil && a.adEdge.Route(ctx) {
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNotFound)
}

func (a *App) serveAPI() {
	// Probes and scrapes are never limited: a busy process must not look dead.
	limits := api.NewLimiter(api.LimitOptions{
		KeyRate: a.cfg.APIRate, IPRate: a.cfg.APIIPRate, TrustedProxies: a.cfg.TrustedProxies,
		Exempt: []string{"/healthz", "/readyz", "/metrics"}, Metrics: a.reg,
	})
	a.api = &http.Server{
		Handler:           limits.Wrap(api.CheckPaths(a.mux)), // refused requests cost least
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	go func() { a.serving <- a.api.Serve(a.apiLn) }()
}

// coreRoutes are the API's own: health, readiness, metrics, keys, audit.
func (a *App) coreRoutes() {
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.health(); err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, "nats_lost", err.Error())
			return
		}
		api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case !a.ready.Load():
			api.WriteError(w, http.StatusServiceUnavailable, "starting", "adsyn is starting")
		case !a.conn.Connected():
			api.WriteError(w, http.StatusServiceUnavailable, "nats_disconnected", "NATS is not connected")
		case a.failed.Load() != nil:
			api.WriteError(w, http.StatusServiceUnavailable, "worker_failed", a.failed.Load().(string))
		default:
			api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}
	})
	a.mux.Handle("GET /metrics", a.reg.Handler())
	a.mux.HandleFunc("GET /v1/openapi.json", api.ServeOpenAPI)
	a.mux.HandleFunc("/", api.NotFound)
	a.keys.Routes(a.mux)
}

// startWorker runs a background role until Stop; an error that ends it
// early is logged, and readiness reports it.
func (a *App) startWorker(name string, run func(context.Context) error) {
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		if err := run(a.runCtx); err != nil {
			a.log.Error("worker stopped", "worker", name, "err", err)
			a.failed.Store(name + ": " + err.Error())
		}
	}()
}

// Serving returns a channel that receives a server's error if one stops on its own.
func (a *App) Serving() <-chan error { return a.serving }

// Stop stops accepting, drains pending publishes, stops workers, then NATS.
func (a *App) Stop(ctx context.Context) error {
	a.ready.Store(false)
	var errs []error
	if a.edge == nil && a.edgeLn != nil {
		a.edgeLn.Close()
	}
	if a.api == nil && a.apiLn != nil {
		a.apiLn.Close()
	}
	if a.edge != nil {
		if err := a.edge.ShutdownWithContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("edge: %w", err))
		}
	}
	if a.pub != nil {
		if err := a.pub.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if a.api != nil {
		if err := a.api.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("api: %w", err))
		}
	}
	// Workers finish what they fetched, acknowledge it, and return.
	if a.cancel != nil {
		a.cancel()
	}
	workersDone := make(chan struct{})
	go func() { a.workers.Wait(); close(workersDone) }()
	select {
	case <-workersDone:
	case <-ctx.Done():
		errs = append(errs, errors.New("app: workers did not stop in time"))
	}
	for i := len(a.stops) - 1; i >= 0; i-- {
		if err := a.stops[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if a.conn != nil {
		a.conn.Close()
	}
	if a.embedded != nil {
		a.embedded.Shutdown()
	}
	return errors.Join(errs...)
}

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, args ...any) {
	p.log.Warn(fmt.Sprintf(format, args...), "component", "edge")
}
