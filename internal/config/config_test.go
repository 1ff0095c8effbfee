package config

import (
	"flag"
	"io"
	"os"
	"strings"
	"testing"
)

func parse(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	c := Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := ApplyEnv(fs, func(k string) string { return env[k] }); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func TestDefaultsAreValid(t *testing.T) {
	if _, err := parse(t, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	c, err := parse(t, []string{"--http", ":9000"}, map[string]string{
		"ADSYN_HTTP":                   ":1", // the flag wins
		"ADSYN_API":                    "127.0.0.1:9001",
		"ADSYN_ROLES":                  "edge, api",
		"ADSYN_TRUSTED_PROXIES":        "10.0.0.0/8,127.0.0.1",
		"ADSYN_TCF_VENDOR_ID":          "755",
		"ADSYN_SECURE_COOKIES":         "true",
		"ADSYN_PARTITIONED_COOKIES":    "1",
		"ADSYN_EVENT_BUFFER_MB":        "64",
		"ADSYN_ALLOW_PRIVATE_PARTNERS": "true",
		"ADSYN_API_RATE":               "0",
		"ADSYN_API_IP_RATE":            "2.5",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":9000" || c.APIAddr != "127.0.0.1:9001" || c.TCFVendorID != 755 || !c.SecureCookies || !c.PartitionedCookies || c.EventBufferMB != 64 || !c.AllowPrivatePartners {
		t.Errorf("got %+v", c)
	}
	if c.APIRate != 0 || c.APIIPRate != 2.5 {
		t.Errorf("API rates %g %g, want 0 2.5", c.APIRate, c.APIIPRate)
	}
	if d := Default(); d.APIRate != 50 || d.APIIPRate != 100 {
		t.Errorf("default API rates %g %g, want 50 100", d.APIRate, d.APIIPRate)
	}
	if !c.Has(RoleEdge) || !c.Has(RoleAPI) || c.Has(RoleStats) {
		t.Errorf("roles %v", c.Roles)
	}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[1].Bits() != 32 {
		t.Errorf("proxies %v", c.TrustedProxies)
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--roles", "edge,magic"}, nil, "--roles"},
		{[]string{"--http", "8080"}, nil, "--http"},
		{[]string{"--replicas", "3"}, nil, "need a NATS cluster"},
		{nil, map[string]string{"ADSYN_PARTITIONS": "many"}, "ADSYN_PARTITIONS"},
		{nil, map[string]string{"ADSYN_TRUSTED_PROXIES": "nope"}, "ADSYN_TRUSTED_PROXIES"},
		{[]string{"--ip-v4-bits", "40"}, nil, "--ip-v4-bits"},
		{[]string{"--log-format", "xml"}, nil, "--log-format"},
		{[]string{"--retention", "1m"}, nil, "--retention"},
		{[]string{"--stats-retention", "2h"}, nil, "--stats-retention"},
		{[]string{"--event-buffer-mb", "0"}, nil, "--event-buffer-mb"},
		{nil, map[string]string{"ADSYN_EVENT_BUFFER_MB": "-5"}, "ADSYN_EVENT_BUFFER_MB"},
		{[]string{"--api-rate", "-1"}, nil, "--api-rate"},
		{[]string{"--api-rate", "NaN"}, nil, "--api-rate"},
		{[]string{"--ad-visitor-ceiling", "-1"}, nil, "--ad-visitor-ceiling"},
		{[]string{"--ad-record-wait", "2s"}, nil, "--ad-record-wait"},
		{nil, map[string]string{"ADSYN_API_IP_RATE": "lots"}, "ADSYN_API_IP_RATE"},
		{[]string{"--api-ip-rate", "1e9"}, nil, "ADSYN_API_IP_RATE"},
	} {
		_, err := parse(t, tc.args, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: err %v, want mention of %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestNATSCredentialSettings(t *testing.T) {
	dir := t.TempDir()
	seed := dir + "/user.nk"
	if err := os.WriteFile(seed, []byte("SUAAAA\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parse(t, []string{"--nats", "nats://a:4222,nats://b:4222", "--nats-user", "edge"},
		map[string]string{"ADSYN_NATS_PASSWORD": "from-env", "ADSYN_NATS_TLS_CA": seed})
	if err != nil || c.NATSPassword != "from-env" || c.NATSTLSCA != seed {
		t.Fatalf("%+v %v", c, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nats-nkey", seed}, "--nats-nkey"},                                        // the embedded server has its own
		{[]string{"--nats", "nats://a:4222", "--nats-nkey", dir + "/missing"}, "--nats-nkey"}, // no such file
		{[]string{"--nats", "nats://a:4222", "--nats-user", "edge"}, "--nats-password"},
		{[]string{"--nats", "nats://a:4222", "--nats-password", "x"}, "--nats-user"},
		{[]string{"--nats", "nats://a:4222", "--nats-nkey", seed, "--nats-creds", seed}, "--nats-creds"},
		{[]string{"--nats", "nats://a:4222", "--nats-tls-cert", seed}, "--nats-tls-key"},
		{[]string{"--nats-user", "edge", "--nats-password", "x"}, "--nats-user"},
		{[]string{"--nats-down-limit", "10ms"}, "--nats-down-limit"},
	} {
		_, err := parse(t, tc.args, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want mention of %q", tc.args, err, tc.want)
		}
	}
}
