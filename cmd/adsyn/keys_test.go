package main

import (
	"bufio"
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestKeysFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"keys"}, "name an operation"},
		{[]string{"keys", "frob"}, `unknown operation "frob"`},
		{[]string{"keys", "create"}, "give --role"},
		{[]string{"keys", "revoke"}, "usage: adsyn keys revoke ID"},
		{[]string{"keys", "revoke", "key_1", "key_2"}, "usage: adsyn keys revoke ID"},
		{[]string{"keys", "list", "extra"}, "takes no arguments"},
		{[]string{"keys", "create", "--role", "admin", "--data", "", "--nats-listen", "127.0.0.1:0"}, "--data"},
		{[]string{"keys", "create", "--role", "wizard", "--nats-listen", "127.0.0.1:0"}, `unknown role "wizard"`},
	} {
		var out, errs strings.Builder
		err := run(c.args, &out, &errs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
	}
}

// The command reaches the data directory: on one adsyn serve never ran it
// says so.
func TestKeysOnAFreshDataDirectory(t *testing.T) {
	cmd := adsyn(t, "keys", "revoke", "key_0", "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "has adsyn serve run once") {
		t.Fatalf("%v: %s", err, out)
	}
}

func TestVersion(t *testing.T) {
	var out, errs strings.Builder
	if err := run([]string{"version"}, &out, &errs); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "adsyn ") || !strings.Contains(out.String(), "go          "+runtime.Version()+"\n") {
		t.Errorf("version:\n%s", out.String())
	}
	// The module versions are go.mod's.
	f, err := os.Open("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for s := bufio.NewScanner(f); s.Scan(); {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && (fields[0] == "github.com/valyala/fasthttp" || fields[0] == "github.com/nats-io/nats.go" ||
			fields[0] == "github.com/nats-io/nats-server/v2") {
			n++
			if !strings.Contains(out.String(), "  "+fields[0]+" "+fields[1]+"\n") {
				t.Errorf("version lacks %s %s:\n%s", fields[0], fields[1], out.String())
			}
		}
	}
	if n != 3 {
		t.Errorf("found %d of the 3 modules in go.mod", n)
	}
	if err := run([]string{"version", "extra"}, &out, &errs); err == nil {
		t.Error("version takes no arguments")
	}
}
