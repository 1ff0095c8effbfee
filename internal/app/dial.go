package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/config"
)

// Access is what a command may do on NATS.
type Access int

const (
	// ReadOnly is the reader user: streams and buckets read, nothing written.
	ReadOnly Access = iota
	// ReadWrite is adsyn's own user.
	ReadWrite
)

// Credentials returns how a process of cfg proves itself to NATS and the
// URLs it dials: for the embedded server of cfg.DataDir, its client address
// and the user seed file made there at first start; for a cluster, the
// --nats-… settings.
func Credentials(cfg config.Config, access Access) (urls string, c bus.Credentials) {
	if cfg.NATSURLs != "" {
		return cfg.NATSURLs, bus.Credentials{
			CredsFile: cfg.NATSCreds, NKeyFile: cfg.NATSNKey, User: cfg.NATSUser, Password: cfg.NATSPassword,
			TLSCert: cfg.NATSTLSCert, TLSKey: cfg.NATSTLSKey, TLSCA: cfg.NATSTLSCA,
		}
	}
	file := bus.NKeyFile
	if access == ReadOnly {
		file = bus.ReaderNKeyFile
	}
	return "nats://" + loopbackIfAny(cfg.NATSListen), bus.Credentials{NKeyFile: filepath.Join(cfg.DataDir, file)}
}

// Dial connects a command (adsyn events and the like) to the NATS of cfg,
// with its credentials, retrying until ctx ends.
func Dial(ctx context.Context, cfg config.Config, name string, access Access, log *slog.Logger) (*bus.Conn, error) {
	if err := cfg.ValidateConn(); err != nil {
		return nil, err
	}
	urls, creds := Credentials(cfg, access)
	if cfg.NATSURLs == "" {
		if _, err := os.Stat(creds.NKeyFile); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no NATS credentials in %s (start adsyn serve with this --data once, or pass --nats and its credentials)", cfg.DataDir)
		}
	}
	opts := []bus.ConnectOption{bus.WithCredentials(creds)}
	if log != nil {
		opts = append(opts, bus.WithLogger(log))
	}
	return bus.Connect(ctx, urls, name, opts...)
}
