// Command adsyn is the one binary: serve, bench, events, consent, keys, version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/consent"
)

const usage = `adsyn: ad serving, segments and profile syndication on NATS JetStream.

Usage:
  adsyn serve [flags]            run adsyn (try: adsyn serve --demo)
  adsyn bench <scenario> [flags] measure a scenario against a bare fasthttp ceiling
  adsyn events [--follow]        print the newest captured events (from a running serve)
  adsyn audit [--data DIR]       scan everything stored for P1, P2 and P6 breaches
  adsyn consent <TC string>      decode an IAB TCF v2.2 consent string as JSON
  adsyn keys create|list|revoke  manage API keys on the data directory or cluster
  adsyn version                  print the version, commit, build time and Go version

Run "adsyn <command> -h" for a command's flags.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "adsyn:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("name a command")
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "bench":
		return runBench(args[1:], stdout, stderr)
	case "events":
		return events(args[1:], stdout, stderr)
	case "audit":
		return audit(args[1:], stdout, stderr)
	case "consent":
		return decodeConsent(args[1:], stdout, stderr)
	case "keys":
		return keys(args[1:], stdout, stderr)
	case "version":
		return version(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func serve(args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := flag.NewFlagSet("adsyn serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	if err := config.ApplyEnv(fs, os.Getenv); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Run(ctx, cfg, log, stdout)
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func decodeConsent(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("adsyn consent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vendor := fs.Int("vendor", 0, "vendor id to report grants for (default: $ADSYN_TCF_VENDOR_ID)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: adsyn consent [--vendor N] <TC string>")
	}
	if *vendor == 0 {
		fmt.Sscanf(os.Getenv("ADSYN_TCF_VENDOR_ID"), "%d", vendor)
	}
	return consent.WriteJSON(stdout, fs.Arg(0), *vendor)
}
