package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"text/tabwriter"
	"time"

	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/config"
)

// ErrKeysOp is an adsyn keys operation that does not exist.
var ErrKeysOp = errors.New("app: keys: the operation must be create, list or revoke")

// KeysCommand is one adsyn keys operation.
type KeysCommand struct {
	Op    string    // "create", "list" or "revoke"
	Role  auth.Role // create
	Owner string    // create
	Name  string    // create
	ID    string    // revoke
	// Actor names the operator in the audit log; empty: cli@<hostname>.
	Actor string
}

// Keys runs cmd on the key store, through the same NATS as adsyn serve:
// the embedded server on cfg.DataDir (adsyn serve on it must be stopped;
// its NATS port then stays free) or the cluster at cfg.NATSURLs. It writes
// what people read to out.
func Keys(ctx context.Context, cfg config.Config, cmd KeysCommand, log *slog.Logger, out io.Writer) (err error) {
	if cmd.Op != "create" && cmd.Op != "list" && cmd.Op != "revoke" {
		return fmt.Errorf("%w, not %q", ErrKeysOp, cmd.Op)
	}
	if cmd.Op == "create" && !cmd.Role.Valid() {
		return fmt.Errorf("app: keys: %w %q", auth.ErrBadRole, cmd.Role)
	}
	if cmd.Actor == "" {
		host, _ := os.Hostname()
		cmd.Actor = "cli@" + host
	}
	a, err := New(cfg, log, out)
	if err != nil {
		return err
	}
	if cfg.NATSURLs == "" {
		// Two servers must never share one store: a taken port means adsyn
		// serve (or another adsyn keys) holds this data now.
		ln, err := net.Listen("tcp", cfg.NATSListen)
		if err != nil {
			return fmt.Errorf("app: keys: %w (is adsyn serve running? stop it, or give --nats nats://%s)", err, cfg.NATSListen)
		}
		ln.Close()
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = errors.Join(err, a.Stop(stopCtx))
	}()
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.dialNATS(dialCtx); err != nil {
		return fmt.Errorf("app: keys: %w", err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	keys, err := auth.NewKeys(watchCtx, a.conn.JS, a.log)
	if err != nil {
		return fmt.Errorf("app: keys: %w (has adsyn serve run once on this data?)", err)
	}
	switch cmd.Op {
	case "create":
		secret, p, err := keys.CreateAs(ctx, cmd.Actor, cmd.Role, cmd.Owner, cmd.Name)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "id\t%s\nrole\t%s\n", p.KeyID, p.Role)
		if p.Owner != "" {
			fmt.Fprintf(tw, "owner\t%s\n", p.Owner)
		}
		fmt.Fprintf(tw, "key\t%s\n", secret)
		tw.Flush()
		fmt.Fprintf(out, "The key is shown once; only its hash is stored. Recorded in the audit log as made by %s.\n", cmd.Actor)
	case "list":
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tROLE\tOWNER\tNAME\tCREATED\tREVOKED")
		for _, p := range keys.All() {
			revoked := "-"
			if !p.Revoked.IsZero() {
				revoked = p.Revoked.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.KeyID, p.Role, dash(p.Owner), dash(p.Name), p.Created.Format(time.RFC3339), revoked)
		}
		tw.Flush()
	case "revoke":
		if err := keys.RevokeAs(ctx, cmd.Actor, cmd.ID); err != nil {
			return err
		}
		fmt.Fprintf(out, "revoked %s; recorded in the audit log as done by %s.\n", cmd.ID, cmd.Actor)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
