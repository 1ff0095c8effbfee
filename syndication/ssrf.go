package syndication

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// Partner endpoints must not reach into the network adsyn runs in (SSRF).
// An endpoint is checked when a partner is created or changed, on its
// written form, and again on every connection, on the address DNS gave,
// since DNS can change between the two (rebinding).

// errRefusedAddress classifies a connection refused by the dial check.
var errRefusedAddress = errors.New("syndication: endpoint address refused")

// Always refused, whatever the operator allows: link-local addresses, where
// cloud metadata services live, and the metadata services' names.
var (
	linkLocal = []netip.Prefix{
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("fd00:ec2::254/128"), // AWS metadata over IPv6
	}
	metadataHosts = []string{"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)

// Refused unless the operator allows private partners (a self-hosted
// deliverer on its own network): loopback, private, shared, unspecified,
// multicast and reserved ranges.
var private = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // CGNAT
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"), // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"), // documentation
	netip.MustParsePrefix("192.88.99.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("224.0.0.0/4"), // multicast
	netip.MustParsePrefix("240.0.0.0/4"), // reserved, broadcast
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments, Teredo among them
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fc00::/7"),        // unique local
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
	netip.MustParsePrefix("ff00::/8"),        // multicast
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// refusedAddr says why a may not be dialled, or "" when it may.
func refusedAddr(a netip.Addr, allowPrivate bool) string {
	a = a.WithZone("")
	if a.Is4In6() {
		a = a.Unmap()
	}
	// NAT64 and 6to4 reach the IPv4 address they embed.
	if nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	} else if sixToFour.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[2:6]))
	}
	for _, p := range linkLocal {
		if p.Contains(a) {
			return "a link-local or cloud metadata address"
		}
	}
	if allowPrivate {
		return ""
	}
	for _, p := range private {
		if p.Contains(a) {
			return "a loopback, private or reserved address (the operator may allow private partners)"
		}
	}
	return ""
}

// checkEndpoint checks a partner URL as written. It refuses addresses by
// refusedAddr, the names of metadata services and of the local host, and
// IPv4 addresses in any spelling but dotted decimal (2852039166, 0xa9fea9fe,
// 0251.0376.0251.0376, 127.1), which some resolvers read as addresses.
func checkEndpoint(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" || len(raw) > 2048 ||
		strings.ContainsAny(u.Host, "\\ ") {
		return invalid("url must be an http(s) URL without credentials, or empty for a pull partner")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return invalid("url port %q is not 1-65535", p)
		}
	}
	host := strings.ToLower(u.Hostname())
	if why := refusedHost(host, allowPrivate); why != "" {
		return invalid("url host %q is %s", u.Hostname(), why)
	}
	return nil
}

// refusedHost says why host (a name or an address, as written in a URL)
// may not be a partner's, or "" when it may.
func refusedHost(host string, allowPrivate bool) string {
	host = strings.TrimSuffix(host, ".")
	if host == "" || strings.HasSuffix(host, ".") {
		return "empty"
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return refusedAddr(a, allowPrivate)
	}
	if a, ok := looseIPv4(host); ok {
		if why := refusedAddr(a, allowPrivate); why != "" {
			return why
		}
		return "an IPv4 address not in dotted decimal form (write " + a.String() + ")"
	}
	for _, m := range metadataHosts {
		if host == m {
			return "a cloud metadata service"
		}
	}
	if !allowPrivate && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
		return "the local host (the operator may allow private partners)"
	}
	return ""
}

// looseIPv4 reads s as inet_aton does: one to four parts, each decimal, hex
// (0x) or octal (leading 0), the last filling the remaining bytes.
func looseIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			p, base = p[2:], 16
		case len(p) > 1 && p[0] == '0':
			p, base = p[1:], 8
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var b [4]byte
	last := len(vals) - 1
	for i := range last {
		if vals[i] > 255 {
			return netip.Addr{}, false
		}
		b[i] = byte(vals[i])
	}
	if rest := 4 - last; vals[last] >= 1<<(8*rest) {
		return netip.Addr{}, false
	}
	for i := 3; i >= last; i-- {
		b[i] = byte(vals[last] >> (8 * (3 - i)))
	}
	return netip.AddrFrom4(b), true
}

// dialControl refuses connections to addresses refusedAddr names: it runs
// after DNS resolution, on the address actually dialled.
func dialControl(allowPrivate bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", errRefusedAddress, address)
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%w: %s", errRefusedAddress, address)
		}
		if why := refusedAddr(a, allowPrivate); why != "" {
			return fmt.Errorf("%w: %s is %s", errRefusedAddress, a, why)
		}
		return nil
	}
}
