package deploy_test

import (
	"slices"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// TestNATSConfig parses deploy/nats/nats-server.conf as nats-server does,
// with the environment node.env.example describes, and checks what adsyn
// relies on: JetStream, a three-route cluster with route credentials, and
// exactly two NKey users in one account, the reader unable to publish
// events or change streams.
func TestNATSConfig(t *testing.T) {
	newUser := func() string {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		return pub
	}
	adsyn, reader := newUser(), newUser()
	for k, v := range map[string]string{
		"NATS_SERVER_NAME": "nats-a", "NATS_CLIENT_LISTEN": "0.0.0.0:4222", "NATS_MONITOR_LISTEN": "127.0.0.1:8222",
		"NATS_CLUSTER_LISTEN": "0.0.0.0:6222", "NATS_STORE_DIR": t.TempDir(), "NATS_ROUTE_PASSWORD": "pw",
		"NATS_ROUTES":    "[nats-route://route:pw@nats-a:6222, nats-route://route:pw@nats-b:6222, nats-route://route:pw@nats-c:6222]",
		"ADSYN_NKEY_PUB": adsyn, "ADSYN_READER_NKEY_PUB": reader,
	} {
		t.Setenv(k, v)
	}
	o, err := server.ProcessConfigFile("nats/nats-server.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !o.JetStream || o.StoreDir == "" {
		t.Errorf("JetStream %v, store %q", o.JetStream, o.StoreDir)
	}
	if o.ServerName != "nats-a" || o.Port != 4222 || o.HTTPPort != 8222 || o.Cluster.Port != 6222 || o.Cluster.Name != "adsyn" {
		t.Errorf("name %q, ports %d/%d/%d, cluster %q", o.ServerName, o.Port, o.HTTPPort, o.Cluster.Port, o.Cluster.Name)
	}
	if len(o.Routes) != 3 || o.Cluster.Username != "route" || o.Cluster.Password != "pw" {
		t.Errorf("%d routes, route user %q", len(o.Routes), o.Cluster.Username)
	}
	if o.MaxControlLine != 1<<20 || o.MaxPayload != 8<<20 {
		t.Errorf("max_control_line %d, max_payload %d", o.MaxControlLine, o.MaxPayload)
	}
	if len(o.Nkeys) != 2 || len(o.Users) != 0 {
		t.Fatalf("%d nkey users and %d password users, want the two nkey users", len(o.Nkeys), len(o.Users))
	}
	for _, u := range o.Nkeys {
		if u.Account == nil || u.Account.Name != "ADSYN" {
			t.Errorf("user %s is not in the account ADSYN", u.Nkey)
		}
		switch u.Nkey {
		case adsyn:
			if u.Permissions != nil {
				t.Errorf("adsyn's user is limited: %+v", u.Permissions)
			}
		case reader:
			if u.Permissions == nil || u.Permissions.Publish == nil {
				t.Fatal("the reader may publish anything")
			}
			allow := u.Permissions.Publish.Allow
			for _, never := range []string{">", "adsyn.>", "adsyn.ev.>", "$JS.API.>", "$JS.API.STREAM.CREATE.*", "$JS.API.STREAM.DELETE.*",
				"$JS.API.STREAM.PURGE.*", "$JS.API.CONSUMER.DELETE.*.*", "$JS.ACK.>"} {
				if slices.Contains(allow, never) {
					t.Errorf("the reader may publish to %s", never)
				}
			}
			if !slices.Contains(allow, "$JS.API.CONSUMER.MSG.NEXT.*.*") || !slices.Contains(allow, "$JS.API.DIRECT.GET.>") {
				t.Errorf("the reader cannot read: %v", allow)
			}
		default:
			t.Errorf("unexpected user %s", u.Nkey)
		}
	}
}
