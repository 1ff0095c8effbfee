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
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/config"
)

const keysUsage = `Usage:
  adsyn keys create --role ROLE [--owner ID] [--name NAME] [--data DIR | --nats URL]
  adsyn keys list [--data DIR | --nats URL]
  adsyn keys revoke ID [--data DIR | --nats URL]
  adsyn keys rotate-click-token [--lead 2m] [--profile-keys FILE] [--data DIR | --nats URL]

With --data, adsyn serve on that directory must be stopped; with --nats, it may run.
Every create, revoke and rotation is recorded in the audit log as done from the command line.

rotate-click-token adds a key for the click and impression tokens of /ad: every edge
verifies it at once and signs with it after --lead; tokens signed before stay valid
until they expire (24 h). No edge restarts.
`

// keys manages API keys on the machine holding the data, or on the cluster:
// the way back when every admin key is lost.
func keys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, keysUsage)
		if len(args) == 0 {
			return errors.New("keys: name an operation: create, list, revoke or rotate-click-token")
		}
		return flag.ErrHelp
	}
	cfg := config.Default()
	cmd := app.KeysCommand{Op: args[0]}
	fs := flag.NewFlagSet("adsyn keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keysUsage+"\nFlags:\n"); fs.PrintDefaults() }
	// The data directory of adsyn serve, or a cluster with its credentials.
	cfg.ConnFlags(fs)
	switch cmd.Op {
	case "create":
		fs.Func("role", "the key's role: admin, marketer, publisher, partner, support, user or telephony", func(s string) error {
			cmd.Role = auth.Role(s)
			return nil
		})
		fs.StringVar(&cmd.Owner, "owner", "", "the advertiser, publisher, partner or user the key acts for")
		fs.StringVar(&cmd.Name, "name", "command line", "a name to recognise the key by")
	case "list", "revoke":
	case "rotate-click-token":
		cmd.Lead = 2 * time.Minute
		fs.DurationVar(&cmd.Lead, "lead", cmd.Lead, "how long until edges sign with the new key (every edge must see it first)")
		fs.StringVar(&cfg.ProfileKeys, "profile-keys", cfg.ProfileKeys, "the master keyring file adsyn serve uses (the key set is sealed with it)")
	default:
		fmt.Fprint(stderr, keysUsage)
		return fmt.Errorf("keys: unknown operation %q", cmd.Op)
	}
	// Flags may come before or after the id.
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	switch {
	case cmd.Op == "revoke" && len(pos) == 1:
		cmd.ID = pos[0]
	case cmd.Op == "revoke":
		return errors.New("usage: adsyn keys revoke ID")
	case len(pos) > 0:
		return fmt.Errorf("keys %s takes no arguments, got %q", cmd.Op, pos)
	case cmd.Op == "create" && cmd.Role == "":
		return errors.New("keys create: give --role (for example --role admin)")
	}
	// The connection flags follow the environment as adsyn serve's do.
	if err := config.ApplyEnv(fs, os.Getenv); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Keys(ctx, cfg, cmd, newLogger(cfg, stderr), stdout)
}
