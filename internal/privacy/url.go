package privacy

import "strings"

// URL scrubs a page URL or referrer (P1, P2), checking decoded text:
//   - only http(s), scheme-relative, path-only or scheme-less host/path
//     forms are kept; anything else (mailto:, javascript:, data:) is dropped;
//   - user info and the fragment are dropped;
//   - a host that is an IP address, names a sensitive term or holds
//     contact data drops the whole URL;
//   - a path that names a sensitive term leaves the origin only;
//   - contact data in a path segment is cut out of that segment;
//   - the query keeps only QueryAllowlist parameters whose values are
//     clean; the rest go.
//
// It returns u itself when nothing changes, else a string in sc.
func (s *Scrubber) URL(sc *Scratch, u string) string {
	if u == "" {
		return u
	}
	if len(u) > MaxText {
		return ""
	}
	if s.kept.has(ruleURL, u) {
		return u
	}
	var scheme, rest string
	switch {
	case hasPrefixFold(u, "https://"):
		scheme, rest = u[:8], u[8:]
	case hasPrefixFold(u, "http://"):
		scheme, rest = u[:7], u[7:]
	case strings.HasPrefix(u, "//"):
		scheme, rest = u[:2], u[2:]
	default:
		rest = u
	}
	changed := false
	// Authority: [userinfo@]host[:port], unless the URL is a bare path.
	auth := ""
	if scheme != "" || rest[0] != '/' {
		auth = rest
		if i := strings.IndexAny(rest, "/?#\\"); i >= 0 {
			auth = rest[:i]
		}
		rest = rest[len(auth):]
	}
	hostport := auth
	if i := strings.LastIndexByte(auth, '@'); i >= 0 {
		if scheme == "" {
			return "" // "mailto:a@b" and the like
		}
		hostport, changed = auth[i+1:], true
	}
	afterAuth := rest
	path, query, fragment := rest, "", false
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		path = rest[:i]
		rest = rest[i:]
		if rest[0] == '?' {
			query = rest[1:]
			if j := strings.IndexByte(query, '#'); j >= 0 {
				query, fragment = query[:j], true
			}
		} else {
			fragment = true
		}
	}
	changed = changed || fragment
	start := len(sc.out)
	origin := func() string {
		sc.out = append(sc.out, scheme...)
		sc.out = append(sc.out, hostport...)
		return str(sc.out[start:])
	}
	// One look at host and path together (they are adjacent in u) settles
	// the common, clean case; only a hit needs to know which one it was.
	hp := len(u) - len(afterAuth) - len(hostport)
	_, sensitive := s.guard.SensitiveBytes(sc.decode(u[hp:hp+len(hostport)+len(path)], false))
	if scheme != "" && auth == "" || auth != "" && !s.hostOK(sc, hostport, sensitive) {
		return ""
	}
	if sensitive { // and the host alone is not: the path is
		if auth == "" {
			return "" // a bare path has no origin to keep
		}
		return origin()
	}
	_, pathDirty := HasContact(sc.decode(path, false))
	keptAll := s.queryKeptAll(sc, query)
	if !changed && !pathDirty && keptAll {
		s.kept.add(ruleURL, u)
		return u
	}
	origin()
	if pathDirty {
		mark := len(sc.out)
		s.appendPath(sc, path)
		// Cutting can join what was apart: check the new path again.
		if _, bad := s.guard.SensitiveBytes(sc.decode(str(sc.out[mark:]), false)); bad {
			sc.out = sc.out[:mark]
			return str(sc.out[start:])
		}
	} else {
		sc.out = append(sc.out, path...)
	}
	if !keptAll || query != "" {
		mark := len(sc.out)
		sc.out = append(sc.out, '?')
		for p := range strings.SplitSeq(query, "&") {
			if s.paramOK(sc, p) {
				if len(sc.out) > mark+1 {
					sc.out = append(sc.out, '&')
				}
				sc.out = append(sc.out, p...)
			}
		}
		if len(sc.out) == mark+1 {
			sc.out = sc.out[:mark]
		}
	}
	return str(sc.out[start:])
}

// hostOK reports a host[:port] made of host-name characters, not an IP
// address, holding no contact data and, when guard is set, naming no
// sensitive term.
func (s *Scrubber) hostOK(sc *Scratch, hostport string, guard bool) bool {
	host := hostport
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host = hostport[:i]
		if !digitsOnly(hostport[i+1:], 1, 5) {
			return false
		}
	}
	if host == "" || host[0] == '[' {
		return false // empty, or an IPv6 literal
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; !isAlnum(c) && c < 0x80 && c != '.' && c != '-' && c != '_' {
			return false
		}
	}
	if validIP(bytesOf(host)) {
		return false
	}
	if guard {
		return s.clean(sc, host)
	}
	_, has := HasContact(bytesOf(host))
	return !has
}

// queryKeptAll reports whether every parameter of query passes paramOK.
func (s *Scrubber) queryKeptAll(sc *Scratch, query string) bool {
	if query == "" {
		return true
	}
	for p := range strings.SplitSeq(query, "&") {
		if !s.paramOK(sc, p) {
			return false
		}
	}
	return true
}

// paramOK reports a query parameter of the allowlist whose value, decoded
// either way ('+' as space or not), is clean.
func (s *Scrubber) paramOK(sc *Scratch, p string) bool {
	k, v, _ := strings.Cut(p, "=")
	allowed := false
	for _, a := range s.allowQuery {
		if k == a {
			allowed = true
			break
		}
	}
	if !allowed || len(v) > 256 {
		return false
	}
	d := sc.decode(v, true)
	if _, bad := s.guard.SensitiveBytes(d); bad {
		return false
	}
	if _, has := HasContact(d); has {
		return false
	}
	_, has := HasContact(sc.decode(v, false))
	return !has
}

// appendPath appends path with contact data cut out of each segment; a
// segment it rewrites is percent-escaped again.
func (s *Scrubber) appendPath(sc *Scratch, path string) {
	first := true
	for seg := range strings.SplitSeq(path, "/") {
		if !first {
			sc.out = append(sc.out, '/')
		}
		first = false
		d := sc.decode(seg, false)
		if _, has := HasContact(d); !has {
			sc.out = append(sc.out, seg...)
			continue
		}
		cleaned, ok := AppendWithoutContacts(sc.seg[:0], d, &sc.tmp)
		sc.seg = cleaned
		if !ok {
			continue
		}
		sc.out = appendEscaped(sc.out, cleaned)
	}
}

// appendEscaped percent-escapes everything but unreserved characters.
func appendEscaped(dst, b []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range b {
		if isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hex[c>>4], hex[c&15])
	}
	return dst
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
