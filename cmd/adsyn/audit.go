package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/config"
)

// errFindings ends `adsyn audit` with a non-zero status when it found a breach.
var errFindings = errors.New("the audit found breaches of P1, P2 or P6")

// audit scans everything stored, against --data DIR (the embedded NATS of a
// stopped adsyn) or --nats URLS (a running one), and prints each finding.
func audit(args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := flag.NewFlagSet("adsyn audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: adsyn audit [--data DIR | --nats URLS] [--ip-v4-bits N --ip-v6-bits N]")
		fmt.Fprintln(stderr, "Scans events, visitor records, profiles and their partner views, the feed, the delivery log and")
		fmt.Fprintln(stderr, "dead letters for sensitive terms (P1), contact data (P2) and full IP addresses (P6).")
		fmt.Fprintln(stderr, "Exits 0 when clean. With --data, the adsyn owning DIR must be stopped. It takes serve's flags:")
		fs.PrintDefaults()
	}
	cfg.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	n, err := app.Audit(ctx, cfg, stdout)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: %d", errFindings, n)
	}
	return nil
}
