package device

import (
	"bytes"
	"net/netip"
)

// Default truncation (P6): what is stored of a client address.
const (
	DefaultV4Bits = 24
	DefaultV6Bits = 48
)

// TruncateIP appends to dst the text of ip with all but its first v4Bits (IPv4)
// or v6Bits (IPv6) bits zeroed: "203.0.113.0" for 203.0.113.7 at /24,
// "2001:db8:1::" for 2001:db8:1:2::3 at /48. IPv4-mapped IPv6 addresses count
// as IPv4; zones are dropped; bits are clamped to the address size. An invalid
// ip appends nothing. From fasthttp: netip.AddrFromSlice(ctx.RemoteIP()).
func TruncateIP(dst []byte, ip netip.Addr, v4Bits, v6Bits int) []byte {
	if !ip.IsValid() {
		return dst
	}
	ip = ip.Unmap().WithZone("")
	bits := v6Bits
	if ip.Is4() {
		bits = v4Bits
	}
	bits = max(0, min(bits, ip.BitLen()))
	p, err := ip.Prefix(bits)
	if err != nil { // unreachable after the clamp; never store the full address
		return dst
	}
	return p.Addr().AppendTo(dst)
}

// maxHops bounds the X-Forwarded-For entries ClientIP reads.
const maxHops = 32

// ClientIP returns the client's address: remote, unless remote is a trusted
// proxy, in which case X-Forwarded-For is read from the right, skipping
// trusted hops, and the first untrusted address is the client. A malformed
// entry stops the walk at the last good address (a proxy, then), so a client
// cannot pick its own address by sending a forged header to a trusted proxy.
// Pass the values of every X-Forwarded-For header joined by commas. Trusted
// prefixes are plain IPv4 or IPv6 (not IPv4-mapped).
func ClientIP(remote netip.Addr, xff []byte, trusted []netip.Prefix) netip.Addr {
	remote = remote.Unmap()
	if !isTrusted(remote, trusted) {
		return remote
	}
	last := remote
	for hops := 0; len(xff) > 0 && hops < maxHops; hops++ {
		entry := xff
		xff = nil
		if i := bytes.LastIndexByte(entry, ','); i >= 0 {
			entry, xff = entry[i+1:], entry[:i]
		}
		entry = trimSpace(entry)
		if len(entry) == 0 {
			continue // "a, ,b" or a trailing comma
		}
		ip, ok := parseHop(entry)
		if !ok {
			return last
		}
		if !isTrusted(ip, trusted) {
			return ip
		}
		last = ip
	}
	return last
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseHop parses one X-Forwarded-For entry: an address, optionally with a
// port ("203.0.113.7:443", "[2001:db8::1]:443"), as some proxies write it.
// IPv4-mapped addresses come back as IPv4.
func parseHop(b []byte) (netip.Addr, bool) {
	if b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 0 || !validPort(b[end+1:]) {
			return netip.Addr{}, false
		}
		b = b[1:end]
	} else if i := bytes.IndexByte(b, ':'); i >= 0 && bytes.IndexByte(b[i+1:], ':') < 0 {
		if !validPort(b[i:]) {
			return netip.Addr{}, false
		}
		b = b[:i] // one colon: IPv4 with a port
	}
	ip, ok := parseAddr(b)
	return ip.Unmap(), ok
}

// validPort accepts "" or ":" followed by 1 to 5 digits.
func validPort(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if b[0] != ':' || len(b) < 2 || len(b) > 6 {
		return false
	}
	for _, c := range b[1:] {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// parseAddr parses an IPv4 or IPv6 address (no zone) as netip.ParseAddr does,
// without allocating on malformed input (ParseAddr's error does).
func parseAddr(b []byte) (netip.Addr, bool) {
	if bytes.IndexByte(b, ':') >= 0 {
		var a [16]byte
		if !parseIPv6(b, &a) {
			return netip.Addr{}, false
		}
		return netip.AddrFrom16(a), true
	}
	var a [4]byte
	if !parseIPv4(b, a[:]) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}

// parseIPv4 parses dotted decimal into out (4 bytes): four fields of 1 to 3
// digits, each at most 255, without leading zeros.
func parseIPv4(b []byte, out []byte) bool {
	field, val, digits := 0, 0, 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case isDigit(c):
			if digits == 1 && val == 0 {
				return false // leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return false
			}
		case c == '.' && digits > 0 && field < 3:
			out[field] = byte(val)
			field, val, digits = field+1, 0, 0
		default:
			return false
		}
	}
	if field != 3 || digits == 0 {
		return false
	}
	out[3] = byte(val)
	return true
}

// parseIPv6 parses RFC 4291 text form into out: up to eight groups of 1 to 4
// hex digits, at most one "::", optionally ending in a dotted IPv4 address.
func parseIPv6(b []byte, out *[16]byte) bool {
	ellipsis := -1 // byte offset in out where "::" stands
	i := 0
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = 0
		b = b[2:]
		if len(b) == 0 {
			return true // "::"
		}
	}
	for i < 16 {
		// One group: hex digits, or a trailing IPv4 address.
		n, val := 0, 0
		for n < len(b) && n < 5 {
			d := hexVal(b[n])
			if d < 0 {
				break
			}
			val = val<<4 | d
			n++
		}
		if n == 0 || n > 4 {
			return false
		}
		if n < len(b) && b[n] == '.' {
			if (ellipsis < 0 && i != 12) || i > 12 {
				return false
			}
			if !parseIPv4(b, out[i:i+4]) {
				return false
			}
			i += 4
			b = nil
			break
		}
		out[i], out[i+1] = byte(val>>8), byte(val)
		i += 2
		b = b[n:]
		if len(b) == 0 {
			break
		}
		if b[0] != ':' || len(b) == 1 {
			return false
		}
		b = b[1:]
		if b[0] == ':' {
			if ellipsis >= 0 {
				return false // a second "::"
			}
			ellipsis = i
			b = b[1:]
			if len(b) == 0 {
				break
			}
		}
	}
	if len(b) != 0 {
		return false // more than eight groups
	}
	if ellipsis < 0 {
		return i == 16
	}
	if i == 16 {
		return false // "::" must stand for at least one group
	}
	// Move what follows "::" to the end, zeroing the gap.
	tail := i - ellipsis
	copy(out[16-tail:], out[ellipsis:i])
	for j := ellipsis; j < 16-tail; j++ {
		out[j] = 0
	}
	return true
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
