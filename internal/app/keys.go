package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/keyring"
)

// ErrKeysOp is an adsyn keys operation that does not exist.
var ErrKeysOp = errors.New("app: keys: the operation must be create, list, revoke or rotate-click-token")

// KeysCommand is one adsyn keys operation.
type KeysCommand struct {
	Op    string    // "create", "list", "revoke" or "rotate-click-token"
	Role  auth.Role // create
	Owner string    // create
	Name  string    // create
	ID    string    // revoke
	// Lead is how long after a rotate-click-token the new key starts
	// signing: every edge must have seen it by then (they watch the set).
	Lead time.Duration
	// Actor names the operator in the audit log; empty: cli@<hostname>.
	Actor string
}

// Keys runs cmd on the key store, through the same NATS as adsyn serve:
// the embedded server on cfg.DataDir (adsyn serve on it must be stopped;
// its NATS port then stays free) or the cluster at cfg.NATSURLs. It writes
// what people read to out.
func Keys(ctx context.Context, cfg config.Config, cmd KeysCommand, log *slog.Logger, out io.Writer) (err error) {
	if !slices.Contains([]string{"create", "list", "revoke", "rotate-click-token"}, cmd.Op) {
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
	case "rotate-click-token":
		return rotateClickToken(ctx, a, keys, cmd, out)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// rotateClickToken adds a click-token key that every edge signs with from
// cmd.Lead on, and drops the keys whose tokens have all expired.
func rotateClickToken(ctx context.Context, a *App, keys *auth.Keys, cmd KeysCommand, out io.Writer) error {
	if cmd.Lead < 10*time.Second {
		return fmt.Errorf("app: keys: rotate-click-token: a lead of %s leaves edges no time to see the new key; give 10s or more", cmd.Lead)
	}
	// The set is sealed with the deployment's keyring: never a new one.
	path := cmp.Or(a.cfg.ProfileKeys, filepath.Join(a.cfg.DataDir, "profile.keys"))
	ring, err := keyring.Load(path)
	if err != nil {
		return fmt.Errorf("app: keys: rotate-click-token needs the keyring adsyn serve uses (--profile-keys): %w", err)
	}
	// Tokens count for 24 h after issue, and 5 min of clock skew.
	set, err := bus.RotateTokenKeys(ctx, a.conn.JS, ring, cmd.Lead, 24*time.Hour+5*time.Minute)
	if err != nil {
		return err
	}
	newest := set.Keys[len(set.Keys)-1]
	if err := keys.Audit().RecordActor(ctx, cmd.Actor, "rotate click-token key", fmt.Sprintf("key %d", newest.ID)); err != nil {
		return fmt.Errorf("app: keys: rotated, not recorded in the audit log: %w", err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSIGNS FROM\tCREATED")
	for _, k := range set.Keys {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", k.ID, k.SignFrom.Format(time.RFC3339), k.Created.Format(time.RFC3339))
	}
	tw.Flush()
	fmt.Fprintf(out, "Edges verify key %d now and sign with it from %s; tokens of the keys it replaces count until they expire. Recorded in the audit log as done by %s.\n",
		newest.ID, newest.SignFrom.Format(time.RFC3339), cmd.Actor)
	return nil
}
