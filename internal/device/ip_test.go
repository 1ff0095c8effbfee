package device

import (
	"net"
	"net/netip"
	"testing"
)

func TestTruncateIP(t *testing.T) {
	tests := []struct {
		ip     string
		v4, v6 int
		want   string
	}{
		{"203.0.113.7", DefaultV4Bits, DefaultV6Bits, "203.0.113.0"},
		{"2001:db8:1:2::3", DefaultV4Bits, DefaultV6Bits, "2001:db8:1::"},
		{"::ffff:203.0.113.7", DefaultV4Bits, DefaultV6Bits, "203.0.113.0"},
		{"fe80::1%eth0", DefaultV4Bits, DefaultV6Bits, "fe80::"},
		{"203.0.113.7", 16, 48, "203.0.0.0"},
		{"203.0.113.7", 32, 48, "203.0.113.7"},
		{"203.0.113.7", 40, 48, "203.0.113.7"},
		{"203.0.113.7", -1, 48, "0.0.0.0"},
		{"2001:db8:1:2::3", 24, 64, "2001:db8:1:2::"},
		{"2001:db8:1:2::3", 24, 200, "2001:db8:1:2::3"},
		{"2001:db8:1:2::3", 24, 0, "::"},
	}
	for _, tt := range tests {
		got := TruncateIP([]byte("ip="), netip.MustParseAddr(tt.ip), tt.v4, tt.v6)
		if string(got) != "ip="+tt.want {
			t.Errorf("TruncateIP(%s, %d, %d) = %q, want %q", tt.ip, tt.v4, tt.v6, got, "ip="+tt.want)
		}
	}
	if got := TruncateIP(nil, netip.Addr{}, 24, 48); len(got) != 0 {
		t.Errorf("invalid address appended %q", got)
	}
	// A net.IP from fasthttp's RemoteIP is 16 bytes even for IPv4.
	ip, _ := netip.AddrFromSlice(net.ParseIP("198.51.100.200"))
	if got := TruncateIP(nil, ip, DefaultV4Bits, DefaultV6Bits); string(got) != "198.51.100.0" {
		t.Errorf("net.IP form: got %q", got)
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8:ffff::/48"),
	}
	tests := []struct {
		name, remote, xff, want string
	}{
		{"no proxy", "203.0.113.7", "", "203.0.113.7"},
		{"untrusted remote ignores header", "203.0.113.7", "198.51.100.1", "203.0.113.7"},
		{"one proxy", "10.0.0.1", "198.51.100.1", "198.51.100.1"},
		{"client spoofs the left", "10.0.0.1", "1.2.3.4, 198.51.100.1", "198.51.100.1"},
		{"trusted hops skipped", "10.0.0.1", "198.51.100.1, 10.0.0.2,10.0.0.3", "198.51.100.1"},
		{"all trusted", "10.0.0.1", "10.0.0.9, 10.0.0.2", "10.0.0.9"},
		{"malformed stops at last good", "10.0.0.1", "198.51.100.1, unknown", "10.0.0.1"},
		{"malformed after trusted hop", "10.0.0.1", "garbage, 10.0.0.2", "10.0.0.2"},
		{"empty entries skipped", "10.0.0.1", "198.51.100.1, , ", "198.51.100.1"},
		{"ipv4 with port", "10.0.0.1", "198.51.100.1:51234", "198.51.100.1"},
		{"ipv6 with port", "10.0.0.1", "[2001:db8::7]:443", "2001:db8::7"},
		{"ipv6 bracketed", "10.0.0.1", "[2001:db8::7]", "2001:db8::7"},
		{"ipv6", "2001:db8:ffff::1", "2001:db8::7", "2001:db8::7"},
		{"mapped remote", "::ffff:10.0.0.1", "198.51.100.1", "198.51.100.1"},
		{"mapped entry", "10.0.0.1", "::ffff:198.51.100.1", "198.51.100.1"},
		{"zone rejected", "10.0.0.1", "fe80::1%eth0", "10.0.0.1"},
		{"leading zero rejected", "10.0.0.1", "198.051.100.1", "10.0.0.1"},
		{"bad port", "10.0.0.1", "198.51.100.1:http", "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ClientIP(netip.MustParseAddr(tt.remote), []byte(tt.xff), trusted)
			if got != netip.MustParseAddr(tt.want) {
				t.Errorf("ClientIP(%s, %q) = %s, want %s", tt.remote, tt.xff, got, tt.want)
			}
		})
	}
	if got := ClientIP(netip.Addr{}, []byte("1.2.3.4"), trusted); got.IsValid() {
		t.Errorf("invalid remote: got %s", got)
	}
}

func TestParseAddrMatchesNetip(t *testing.T) {
	inputs := []string{
		"0.0.0.0", "255.255.255.255", "1.2.3.4", "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3",
		"1.2.3.4.", ".1.2.3", "", "::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
		"1:2:3:4:5:6:7:8:9", "1::2::3", ":::", "1:::2", "1:", ":1", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4",
		"1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.4", "::a.2.3.4", "12345::", "fffff::", "ABCD:ef01::", "::ffff:01.2.3.4",
		"1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "2001:db8::1.2.3", "g::", "1.2.3.-4",
	}
	for _, in := range inputs {
		want, err := netip.ParseAddr(in)
		got, ok := parseAddr([]byte(in))
		if ok != (err == nil) || (ok && got != want) {
			t.Errorf("parseAddr(%q) = %s, %v; netip: %s, %v", in, got, ok, want, err)
		}
	}
}
