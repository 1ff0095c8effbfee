package syndication

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Every spelling of a refused address is refused; allowPrivate lets
// loopback and private ones through, never link-local or metadata.
func TestEndpointSpellings(t *testing.T) {
	const (
		ok      = iota // accepted
		private        // refused unless private partners are allowed
		never          // refused always
	)
	for _, c := range []struct {
		url  string
		want int
	}{
		{"https://partner.example/hook", ok},
		{"https://93.184.215.14/hook", ok},
		{"https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook", ok},
		{"http://1.2.3.4:8443/x", ok},
		{"https://partner.example./hook", ok},
		{"https://[2002:5db8:d70e::1]/", ok}, // 6to4 of a public address

		{"http://169.254.169.254/latest/meta-data/", never},
		{"http://169.254.169.254./", never},
		{"http://[::ffff:169.254.169.254]/", never},
		{"http://[::ffff:a9fe:a9fe]/", never},
		{"http://[64:ff9b::169.254.169.254]/", never},
		{"http://[2002:a9fe:a9fe::1]/", never},
		{"http://2852039166/", never},          // decimal
		{"http://0xa9fea9fe/", never},          // hex
		{"http://0xA9.0xFE.0xA9.0xFE/", never}, // hex per byte
		{"http://0251.0376.0251.0376/", never}, // octal
		{"http://169.254.43518/", never},       // short form
		{"http://[fe80::1]/", never},
		{"http://[fe80::1%25eth0]/", never},
		{"http://[febf::1]/", never},
		{"http://[fd00:ec2::254]/", never},
		{"http://metadata.google.internal/computeMetadata/v1/", never},
		{"http://METADATA.GOOGLE.INTERNAL./", never},

		{"http://127.0.0.1:8081/demo/partner", private},
		{"http://127.1/", never},        // not dotted decimal: refused in any case
		{"http://0x7f000001/", never},   // not dotted decimal: refused in any case
		{"http://2130706433/", never},   // not dotted decimal: refused in any case
		{"http://017700000001/", never}, // not dotted decimal: refused in any case
		{"http://localhost:9000/", private},
		{"http://LocalHost./", private},
		{"http://api.localhost/", private},
		{"http://[::1]/", private},
		{"http://[::ffff:127.0.0.1]/", private},
		{"http://[::]/", private},
		{"http://0.0.0.0/", private},
		{"http://0/", never}, // not dotted decimal: refused in any case
		{"http://10.0.0.1/", private},
		{"http://172.16.5.4/", private},
		{"http://172.31.255.255/", private},
		{"http://192.168.1.1/", private},
		{"http://100.64.0.1/", private},
		{"http://[fc00::1]/", private},
		{"http://[fd12:3456::1]/", private},
		{"http://[64:ff9b::10.0.0.1]/", private},
		{"http://[2002:7f00:1::]/", private},
		{"http://224.0.0.1/", private},
		{"http://255.255.255.255/", private},
		{"http://240.0.0.1/", private},
		{"http://[ff02::1]/", private},
		{"http://198.18.0.1/", private},
		{"http://[2001:db8::1]/", private},
		{"http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", private}, // Teredo
	} {
		for _, allow := range []bool{false, true} {
			err := checkEndpoint(c.url, allow)
			refused := c.want == never || c.want == private && !allow
			if refused != (err != nil) {
				t.Errorf("%s (private allowed %v): err %v, want refused %v", c.url, allow, err, refused)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v is not ErrInvalid", c.url, err)
			}
		}
	}
	// Tricks that hide the host: refused whatever the setting.
	for _, u := range []string{
		"http://good@127.0.0.1/", "http://partner.example:x@10.0.0.1/", "http://good.example#@127.0.0.1/",
		`http://good.example\@127.0.0.1/`, "http://127.0.0.1 /", "ftp://partner.example/", "http:///x",
		"http://partner.example:0/", "http://partner.example:70000/", "//partner.example/",
	} {
		if err := checkEndpoint(u, true); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
}

func TestLooseIPv4(t *testing.T) {
	for s, want := range map[string]string{
		"2852039166": "169.254.169.254", "0xa9fea9fe": "169.254.169.254", "127.1": "127.0.0.1",
		"10.1.2": "10.1.0.2", "0177.0.0.01": "127.0.0.1", "0": "0.0.0.0", "1.2.3.4": "1.2.3.4",
	} {
		a, ok := looseIPv4(s)
		if !ok || a != netip.MustParseAddr(want) {
			t.Errorf("%s: %v %v, want %s", s, a, ok, want)
		}
	}
	for _, s := range []string{"1.2.3.4.5", "256.1.1.1", "1.2.65536", "4294967296", "08", "1e100", "a.b", "", "1..2", "0x"} {
		if a, ok := looseIPv4(s); ok {
			t.Errorf("%s read as %s", s, a)
		}
	}
}

// The dial check judges the address DNS gave, whatever the URL said: a
// name resolving to loopback is refused at connect time.
func TestDialRefusesResolvedAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	client := func(allow bool) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: (&net.Dialer{Control: dialControl(allow)}).DialContext,
		}}
	}
	for _, u := range []string{srv.URL, "http://localhost:" + port} {
		_, err := client(false).Get(u)
		if !errors.Is(err, errRefusedAddress) {
			t.Errorf("%s: %v, want the dial refused", u, err)
		}
		if err != nil && !strings.Contains(err.Error(), "127.0.0.1") && !strings.Contains(err.Error(), "::1") {
			t.Errorf("%s: %v does not name the address", u, err)
		}
		res, err := client(true).Get(srv.URL)
		if err != nil {
			t.Fatalf("%s with private partners allowed: %v", u, err)
		}
		res.Body.Close()
	}
}

func FuzzCheckEndpoint(f *testing.F) {
	for _, s := range []string{"https://partner.example/hook", "http://2852039166/", "http://[::ffff:169.254.169.254]/",
		"http://good@127.0.0.1/", "http://127.1/", "http://[fe80::1%25eth0]/", "http://0xA9.0xFE.0xA9.0xFE/", "http://metadata.google.internal./"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if checkEndpoint(raw, true) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.User != nil || (u.Scheme != "http" && u.Scheme != "https") {
			t.Fatalf("%q accepted", raw)
		}
		if a, err := netip.ParseAddr(strings.TrimSuffix(u.Hostname(), ".")); err == nil && refusedAddr(a, true) != "" {
			t.Fatalf("%q accepted: %s", raw, a)
		}
		if a, ok := looseIPv4(strings.TrimSuffix(u.Hostname(), ".")); ok && refusedAddr(a, true) != "" {
			t.Fatalf("%q accepted: %s", raw, a)
		}
	})
}
