package app_test

import (
	"net"
	"strings"
	"testing"
)

// TestBadIDsGet4xxAndNATSStays sends ids that would break a NATS subject (4
// KB, 70 KB, wildcards, a space, NUL) on the routes that take them: each
// gets a 4xx, and afterwards the process still serves, is ready, and stores
// events.
func TestBadIDsGet4xxAndNATSStays(t *testing.T) {
	a, out := start(t, testConfig(t))
	admin := printedAdminKey(t, out.String())
	api := "http://" + a.APIAddr()
	long := strings.Repeat("a", 4100)
	for _, path := range []string{
		"/v1/sites/" + long, "/v1/campaigns/" + long, "/v1/creatives/" + long, "/v1/advertisers/" + long,
		"/v1/users/" + long + "/recipients",
		"/v1/users/*/recipients", "/v1/users/%3E/recipients", "/v1/sites/a%20b", "/v1/sites/a%00b", "/v1/campaigns/a.*",
	} {
		if code, body := call(t, "GET", api+path, admin, ""); code < 400 || code >= 500 {
			t.Errorf("GET %.60s: %d %s", path, code, body)
		}
	}
	// 70 KB: past the header limit; net/http answers 431 itself.
	if code := rawStatus(t, a.APIAddr(), "/v1/sites/"+strings.Repeat("b", 70<<10)); code < 400 || code >= 500 {
		t.Errorf("70 KB id: %d", code)
	}
	if !a.Conn().Connected() {
		t.Fatal("the NATS connection did not survive the bad ids")
	}
	if code, body := call(t, "GET", api+"/readyz", "", ""); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	before := a.Publisher().Stats().Acked
	pixelHit(t, a.EdgeAddr(), "")
	poll(t, "an event stored after the bad ids", func() bool { return a.Publisher().Stats().Acked > before })
}

// rawStatus sends GET path over a raw connection and returns the status code.
func rawStatus(t *testing.T, addr, path string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	var code int
	if f := strings.Fields(string(buf[:n])); len(f) >= 2 {
		for _, d := range f[1] {
			code = code*10 + int(d-'0')
		}
	}
	return code
}
