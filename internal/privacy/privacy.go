package privacy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unsafe"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/guard"
)

var (
	ErrIPBits = errors.New("privacy: IP prefix keeps too much of the address")
)

// Guard finds sensitive terms (P1) in decoded text. Its verdict must be a
// function of the text alone: the Scrubber remembers values it kept.
type Guard interface {
	SensitiveBytes(text []byte) (category string, ok bool)
}

// Limits of what Scrub keeps: the edges cut before, this is the last word.
const (
	MaxText    = 4096 // a longer field is dropped whole
	MaxIPv4Bit = 24   // an operator may keep fewer bits, never more (P6)
	MaxIPv6Bit = 64
)

// VerdictCacheSize is how many texts the default guard's cache remembers,
// and how many values the Scrubber remembers it kept as they were.
const VerdictCacheSize = 4096

// QueryAllowlist are the only query parameters a stored URL keeps (P2):
// campaign tags, which say how the visitor came, not who they are.
var QueryAllowlist = []string{"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"}

// Options configure a Scrubber.
type Options struct {
	// Guard defaults to the built-in lexicon (guard.Default) behind a
	// cache of its verdicts: pages repeat their paths, queries and labels.
	Guard    Guard
	IPv4Bits int // prefix kept of an IPv4 address (default 24, at most 24)
	IPv6Bits int // of an IPv6 address (default 48, at most 64)
	// Exact takes both prefixes as given, zeros included (keep no bit);
	// without it, both zero mean the defaults.
	Exact bool
}

// Scrubber is the choke point's rule set.
type Scrubber struct {
	guard      Guard
	v4, v6     int
	allowQuery []string
	kept       *keptCache // nil: every value scrubbed in full
}

// New returns a Scrubber; both IP prefixes 0 mean the defaults (/24, /48)
// unless opts.Exact is set.
func New(opts Options) (*Scrubber, error) {
	if opts.Guard == nil {
		opts.Guard = guard.NewCache(guard.Default(), VerdictCacheSize)
	}
	if !opts.Exact && opts.IPv4Bits == 0 && opts.IPv6Bits == 0 {
		opts.IPv4Bits, opts.IPv6Bits = 24, 48
	}
	if opts.IPv4Bits < 0 || opts.IPv4Bits > MaxIPv4Bit {
		return nil, fmt.Errorf("privacy: ipv4 bits %d (0-%d): %w", opts.IPv4Bits, MaxIPv4Bit, ErrIPBits)
	}
	if opts.IPv6Bits < 0 || opts.IPv6Bits > MaxIPv6Bit {
		return nil, fmt.Errorf("privacy: ipv6 bits %d (0-%d): %w", opts.IPv6Bits, MaxIPv6Bit, ErrIPBits)
	}
	return &Scrubber{guard: opts.Guard, v4: opts.IPv4Bits, v6: opts.IPv6Bits, allowQuery: QueryAllowlist,
		kept: newKeptCache(VerdictCacheSize)}, nil
}

// Scratch holds the strings Scrub rewrites. Reuse one per goroutine: after
// the first events it makes Scrub allocation-free.
type Scratch struct {
	out []byte    // rewritten values of the last event
	dec [2][]byte // percent-decoding
	tmp [2][]byte // contact removal
	seg []byte    // a cleaned path segment
}

// Scrub enforces P1, P2 and P6 on e in place, on decoded text:
//   - URL and referrer: see URL; search text, site, slot, campaign, creative,
//     event name, language, country and device: dropped when sensitive,
//     contact data cut out;
//   - categories: each sensitive one, or one holding contact data, dropped;
//   - IP: truncated to the configured prefix, dropped if it does not parse;
//   - area (a caller's country and area code): kept only in that shape.
//
// Rewritten strings point into sc until its next use, so encode e first.
// e.Categories is filtered in place.
func (s *Scrubber) Scrub(e *event.Event, sc *Scratch) {
	sc.out = sc.out[:0]
	e.URL = s.URL(sc, e.URL)
	e.Referrer = s.URL(sc, e.Referrer)
	e.Query = s.text(sc, e.Query)
	e.Site = s.text(sc, e.Site)
	e.Slot = s.text(sc, e.Slot)
	e.Campaign = s.text(sc, e.Campaign)
	e.Creative = s.text(sc, e.Creative)
	e.Name = s.text(sc, e.Name)
	// Language, country, device type and OS are the edge's own labels, not
	// free text: contact data is still cut, the guard is not asked.
	e.Lang = s.label(sc, e.Lang)
	e.Country = s.label(sc, e.Country)
	e.Device.Type = s.label(sc, e.Device.Type)
	e.Device.OS = s.label(sc, e.Device.OS)
	if !validVersion(e.Device.OSVersion) {
		e.Device.OSVersion = ""
	}
	e.Device.Model = s.text(sc, e.Device.Model)
	kept := e.Categories[:0]
	for _, c := range e.Categories {
		if c != "" && len(c) <= MaxText && s.clean(sc, c) {
			kept = append(kept, c)
		}
	}
	clear(e.Categories[len(kept):])
	e.Categories = kept
	e.IP = s.ip(sc, e.IP)
	if !validArea(e.Area) {
		e.Area = ""
	}
}

// clean reports whether v, decoded, holds neither a sensitive term nor
// contact data.
func (s *Scrubber) clean(sc *Scratch, v string) bool {
	if s.kept.has(ruleClean, v) {
		return true
	}
	d := sc.decode(v, false)
	if _, bad := s.guard.SensitiveBytes(d); bad {
		return false
	}
	if _, has := HasContact(d); has {
		return false
	}
	s.kept.add(ruleClean, v)
	return true
}

// text scrubs one free-text value: "" when it names a sensitive term,
// else v with every email address, phone number and IP address cut out.
func (s *Scrubber) text(sc *Scratch, v string) string {
	if v == "" {
		return v
	}
	if len(v) > MaxText {
		return ""
	}
	if s.kept.has(ruleClean, v) {
		return v
	}
	d := sc.decode(v, false)
	if _, bad := s.guard.SensitiveBytes(d); bad {
		return ""
	}
	if _, has := HasContact(d); !has {
		s.kept.add(ruleClean, v)
		return v
	}
	start := len(sc.out)
	out, ok := AppendWithoutContacts(sc.out, d, &sc.tmp)
	if !ok {
		return ""
	}
	sc.out = out
	// Cutting can join what was apart ("h1234567iv"): check again.
	if _, bad := s.guard.SensitiveBytes(sc.out[start:]); bad {
		sc.out = sc.out[:start]
		return ""
	}
	return trimmed(sc.out[start:])
}

// label keeps a label the edge derived itself unless it holds contact data.
func (s *Scrubber) label(sc *Scratch, v string) string {
	if len(v) > MaxText {
		return ""
	}
	if _, has := HasContact(bytesOf(v)); has {
		return ""
	}
	return v
}

func trimmed(b []byte) string {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '-' || b[0] == ',') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '-' || b[len(b)-1] == ',') {
		b = b[:len(b)-1]
	}
	return str(b)
}

// ip truncates a textual address to the configured prefix (P6).
func (s *Scrubber) ip(sc *Scratch, v string) string {
	if v == "" {
		return v
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	bits := s.v6
	if a.Is4() {
		bits = s.v4
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	start := len(sc.out)
	sc.out = p.Addr().AppendTo(sc.out)
	return str(sc.out[start:])
}

// validArea reports "+CC" or "+CC AREA": a country code of 1-3 digits and
// an area code of at most 5, never enough digits to name a line.
func validArea(a string) bool {
	if a == "" {
		return true
	}
	if len(a) < 2 || a[0] != '+' {
		return false
	}
	cc, area, spaced := strings.Cut(a[1:], " ")
	return digitsOnly(cc, 1, 3) && (!spaced || digitsOnly(area, 1, 5))
}

// validVersion reports an OS version: up to four dot-separated numbers of
// at most five digits ("10.0.19045"), which the phone recogniser would
// otherwise cut.
func validVersion(v string) bool {
	if v == "" {
		return true
	}
	parts := 0
	for p := range strings.SplitSeq(v, ".") {
		if parts++; parts > 4 || !digitsOnly(p, 1, 5) {
			return false
		}
	}
	return true
}

func digitsOnly(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// str is b as a string without a copy; b must not change while it is used.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// bytesOf is s as a read-only byte slice without a copy.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// maxDecodes bounds repeated percent-decoding ("%2540" is "%40" is "@").
const maxDecodes = 4

// decode returns v percent-decoded until no escape is left (at most
// maxDecodes rounds), '+' read as a space when plus is set. Without escapes
// it returns v's own bytes, read-only.
func (sc *Scratch) decode(v string, plus bool) []byte {
	cur := bytesOf(v)
	for round := range maxDecodes {
		if !needsDecode(cur, plus) {
			return cur
		}
		out := sc.dec[round%2][:0]
		for i := 0; i < len(cur); i++ {
			c := cur[i]
			switch {
			case c == '%' && i+2 < len(cur) && isHex(cur[i+1]) && isHex(cur[i+2]):
				out = append(out, unhex(cur[i+1])<<4|unhex(cur[i+2]))
				i += 2
			case c == '+' && plus:
				out = append(out, ' ')
			default:
				out = append(out, c)
			}
		}
		sc.dec[round%2] = out
		cur = out
		plus = false // '+' means space in the first form only
	}
	return cur
}

func needsDecode(b []byte, plus bool) bool {
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]) || b[i] == '+' && plus {
			return true
		}
	}
	return false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
