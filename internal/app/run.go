package app

import (
	"context"
	"io"
	"log/slog"

	"github.com/adsyn/adsyn/internal/config"
)

// Run starts adsyn, serves until ctx ends (SIGINT, SIGTERM), then stops it
// within the configured shutdown timeout.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, out io.Writer) error {
	a, err := New(cfg, log, out)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("stopping: draining pending events")
	case serveErr = <-a.Serving():
		log.Error("a server stopped", "err", serveErr)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := a.Stop(stopCtx); err != nil {
		return err
	}
	log.Info("stopped")
	return serveErr
}
