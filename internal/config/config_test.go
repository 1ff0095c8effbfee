package config

import (
	"flag"
	"io"
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
		"ADSYN_EVENT_BUFFER_MB":        "64",
		"ADSYN_ALLOW_PRIVATE_PARTNERS": "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":9000" || c.APIAddr != "127.0.0.1:9001" || c.TCFVendorID != 755 || c.EventBufferMB != 64 || !c.AllowPrivatePartners {
		t.Errorf("got %+v", c)
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
	} {
		_, err := parse(t, tc.args, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: err %v, want mention of %q", tc.args, tc.env, err, tc.want)
		}
	}
}
