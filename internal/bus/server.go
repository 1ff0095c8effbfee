package bus

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// maxControlLine bounds a protocol line the embedded server accepts. The
// nats-server default (4 KiB) closes a connection that sends a longer
// subject, and nats.go then gives the connection up for good: one request
// with a long id would cut the whole process off. Ids are validated before
// they become subjects; this is the margin behind that check.
const maxControlLine = 1 << 20

// Embedded is a nats-server with JetStream running in this process.
type Embedded struct {
	srv *server.Server
}

// EmbeddedOption configures the embedded server.
type EmbeddedOption func(*server.Options) error

// WithUsers requires every client to be one of u's two NKey users: adsyn's
// own with every permission, and the reader, which reads and writes
// nothing. Without it (or WithPassword) the server is open: only
// benchmarks' private servers run so.
func WithUsers(u Users) EmbeddedOption {
	return func(o *server.Options) error {
		if u.Adsyn == "" || u.Reader == "" {
			return fmt.Errorf("bus: embedded nats: %w: two users needed", ErrCredentials)
		}
		o.Nkeys = append(o.Nkeys,
			&server.NkeyUser{Nkey: u.Adsyn},
			&server.NkeyUser{Nkey: u.Reader, Permissions: readerPermissions()},
		)
		return nil
	}
}

// WithPassword requires the user and password (a cluster stand-in in tests).
func WithPassword(user, password string) EmbeddedOption {
	return func(o *server.Options) error {
		if user == "" || password == "" {
			return fmt.Errorf("bus: embedded nats: %w: empty user or password", ErrCredentials)
		}
		o.Users = append(o.Users, &server.User{Username: user, Password: password})
		return nil
	}
}

// WithTLS requires TLS of every client, with cfg's certificate.
func WithTLS(cfg *tls.Config) EmbeddedOption {
	return func(o *server.Options) error {
		if cfg == nil || (len(cfg.Certificates) == 0 && cfg.GetCertificate == nil) {
			return fmt.Errorf("bus: embedded nats: %w: TLS without a certificate", ErrCredentials)
		}
		o.TLS, o.TLSConfig, o.TLSTimeout = true, cfg, 5
		o.TLSVerify = cfg.ClientAuth == tls.RequireAndVerifyClientCert
		return nil
	}
}

// StartEmbedded starts a JetStream-enabled nats-server storing under dir and
// listening on listen ("host:port"; port 0 or -1 picks a free one).
func StartEmbedded(dir, listen string, opts ...EmbeddedOption) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("bus: nats listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("bus: nats listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	o := &server.Options{
		ServerName:     "adsyn",
		Host:           host,
		Port:           port,
		JetStream:      true,
		StoreDir:       dir,
		NoSigs:         true,
		NoLog:          true,
		MaxPayload:     8 << 20,
		MaxControlLine: maxControlLine,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("bus: embedded nats on %s did not start within 10s (is the port in use? set --nats-listen)", listen)
	}
	return &Embedded{srv: srv}, nil
}

// URL is the client URL of the embedded server.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
