package taxonomy

import (
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/adsyn/adsyn/internal/guard"
)

// URL patterns are "host/path":
//
//	example.com                 the host or any subdomain, any path
//	example.com/services/plumbing  that host, path starting with those segments
//	*/uslugi/santehnika         any host, those segments anywhere in the path
//	/uslugi/santehnika          any host, path starting with those segments
//
// A leading "*." on the host and a trailing "/*" are accepted and change
// nothing. Segments match whole (so /plumbing does not match /plumbingx),
// case-folded and percent-decoded, so Cyrillic slugs match encoded URLs.
// Matching costs a few map lookups per path segment whatever the number of
// patterns.

const (
	maxPathSegs    = 16 // path segments of an event URL looked at
	maxPatternSegs = 6  // segments in one pattern
)

type urlPattern struct {
	host     string // "" any
	path     string // folded segments joined by "/"; "" none
	anchored bool   // the path starts at the first segment
	segs     int
}

func parseURLPattern(s string) (urlPattern, error) {
	var p urlPattern
	if s == "" || len(s) > 512 {
		return p, fmt.Errorf("empty or longer than 512 bytes")
	}
	host, path, hasPath := strings.Cut(s, "/")
	switch {
	case host == "*":
	case host == "":
		if !hasPath {
			return p, fmt.Errorf("no host and no path")
		}
		p.anchored = true
	default:
		host = strings.TrimPrefix(strings.ToLower(host), "*.")
		if !validHost(host) {
			return p, fmt.Errorf("host %q is not a host name", host)
		}
		p.host = host
		p.anchored = true
	}
	path = strings.TrimSuffix(path, "*")
	var segs []string
	var buf []byte
	for _, seg := range strings.Split(path, "/") {
		if seg == "" {
			continue
		}
		if strings.Contains(seg, "*") {
			return p, fmt.Errorf("* may only end the pattern")
		}
		folded := foldPath(buf[:0], seg)
		buf = folded
		if len(folded) == 0 {
			continue
		}
		segs = append(segs, string(folded))
	}
	if len(segs) > maxPatternSegs {
		return p, fmt.Errorf("more than %d path segments", maxPatternSegs)
	}
	p.path, p.segs = strings.Join(segs, "/"), len(segs)
	if p.host == "" && p.segs == 0 {
		return p, fmt.Errorf("matches every URL")
	}
	return p, nil
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 || h[0] == '.' || h[len(h)-1] == '.' || strings.Contains(h, "..") {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// foldPath appends a path segment percent-decoded and lower-cased.
func foldPath[T string | []byte](dst []byte, s T) []byte {
	start := len(dst)
	dst = guard.AppendUnescaped(dst, s)
	// Lower-case in place when ASCII; rebuild when not.
	ascii := true
	for _, c := range dst[start:] {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		for i := start; i < len(dst); i++ {
			if c := dst[i]; 'A' <= c && c <= 'Z' {
				dst[i] = c + 'a' - 'A'
			}
		}
		return dst
	}
	var tmp [256]byte
	raw := append(tmp[:0], dst[start:]...)
	dst = dst[:start]
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRune(raw[i:])
		i += size
		r = unicode.ToLower(r)
		if r == 'ё' {
			r = 'е'
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

type urlRule struct {
	host     string
	anchored bool
	rule     int32
}

type urlIndex struct {
	hosts   map[string][]int32   // host-only patterns
	paths   map[string][]urlRule // by folded segments joined with "/"
	maxSegs int
}

func (x *urlIndex) add(p urlPattern, rule int32) {
	if x.hosts == nil {
		x.hosts, x.paths = map[string][]int32{}, map[string][]urlRule{}
	}
	if p.segs == 0 {
		x.hosts[p.host] = append(x.hosts[p.host], rule)
		return
	}
	x.paths[p.path] = append(x.paths[p.path], urlRule{host: p.host, anchored: p.anchored, rule: rule})
	x.maxSegs = max(x.maxSegs, p.segs)
}

// splitURL returns the host (lower-cased in buf) and the raw path of u.
func splitURL(u string) (host, path string) {
	if i := strings.Index(u, "://"); i >= 0 && i < 16 {
		u = u[i+3:]
	} else if strings.HasPrefix(u, "//") {
		u = u[2:]
	} else if !strings.HasPrefix(u, "/") {
		// No scheme: a host only if what comes first looks like one.
		if i := strings.IndexAny(u, "/?#"); i >= 0 && !strings.Contains(u[:i], ".") || i < 0 && !strings.Contains(u, ".") {
			return "", u
		}
	}
	end := strings.IndexAny(u, "/?#")
	if end < 0 {
		end = len(u)
	}
	host, rest := u[:end], u[end:]
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	if end := strings.IndexAny(rest, "?#"); end >= 0 {
		rest = rest[:end]
	}
	return host, rest
}

// urlScratch holds the folded host (a) and path (b) of one match; it is
// pooled so matching allocates nothing.
type urlScratch struct{ a, b []byte }

var urlScratchPool = sync.Pool{New: func() any { return &urlScratch{a: make([]byte, 0, 256), b: make([]byte, 0, 512)} }}

func acquireURLScratch() *urlScratch { return urlScratchPool.Get().(*urlScratch) }

func releaseURLScratch(s *urlScratch) {
	if cap(s.a) > 64<<10 || cap(s.b) > 64<<10 {
		return // let an oversized buffer go
	}
	urlScratchPool.Put(s)
}

// match calls fn for each rule whose pattern matches u; f provides scratch.
func (x *urlIndex) match(f *urlScratch, u string, fn func(rule int32)) {
	if len(x.hosts) == 0 && len(x.paths) == 0 || u == "" {
		return
	}
	rawHost, rawPath := splitURL(u)
	// Lower-case the host into f.a; hosts are ASCII (IDNs arrive as punycode).
	f.a = f.a[:0]
	for i := 0; i < len(rawHost); i++ {
		c := rawHost[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		f.a = append(f.a, c)
	}
	host := f.a
	for h := host; len(h) > 0 && len(x.hosts) > 0; {
		for _, r := range x.hosts[string(h)] {
			fn(r)
		}
		i := indexByte(h, '.')
		if i < 0 {
			break
		}
		h = h[i+1:]
	}
	if len(x.paths) == 0 {
		return
	}
	// Fold the path into f.b: segments joined by "/", no leading slash.
	var bounds [maxPathSegs][2]int32
	n := 0
	f.b = f.b[:0]
	for seg := range strings.SplitSeq(rawPath, "/") {
		if seg == "" || n == maxPathSegs {
			continue
		}
		if n > 0 {
			f.b = append(f.b, '/')
		}
		start := len(f.b)
		f.b = foldPath(f.b, seg)
		if len(f.b) == start {
			if n > 0 {
				f.b = f.b[:start-1]
			}
			continue
		}
		bounds[n] = [2]int32{int32(start), int32(len(f.b))}
		n++
	}
	p := f.b
	for i := 0; i < n; i++ {
		for j := i; j < n && j-i < x.maxSegs; j++ {
			rules, ok := x.paths[string(p[bounds[i][0]:bounds[j][1]])]
			if !ok {
				continue
			}
			for _, r := range rules {
				if r.anchored && i != 0 || r.host != "" && !hostMatches(host, r.host) {
					continue
				}
				fn(r.rule)
			}
		}
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// hostMatches reports whether h is pattern or a subdomain of it.
func hostMatches(h []byte, pattern string) bool {
	if len(h) < len(pattern) || string(h[len(h)-len(pattern):]) != pattern {
		return false
	}
	return len(h) == len(pattern) || h[len(h)-len(pattern)-1] == '.'
}
