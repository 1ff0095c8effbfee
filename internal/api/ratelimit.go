package api

import (
	"crypto/sha256"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/adsyn/adsyn/internal/device"
	"github.com/adsyn/adsyn/internal/metrics"
)

// DefaultMaxTracked bounds the keys, and separately the addresses, a Limiter
// tracks: about 100 bytes each.
const DefaultMaxTracked = 100_000

// maxBearer is the longest Authorization value read as a key; longer ones
// are all one key, which the IP limit still covers.
const maxBearer = 256

// LimitOptions configure a Limiter.
type LimitOptions struct {
	// KeyRate and IPRate are requests per second per API key and per client
	// address; bursts are twice that. 0 turns a limit off.
	KeyRate, IPRate float64
	// TrustedProxies are believed in X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// MaxTracked bounds each limiter's table (DefaultMaxTracked when 0).
	MaxTracked int
	// Exempt paths are never limited (health probes and scrapes).
	Exempt []string
	// Metrics, when set, gets adsyn_api_rate_limited_total{by}.
	Metrics *metrics.Registry
}

// Limiter answers 429 to callers over their rate. The key is a SHA-256 of the
// bearer token, so neither tables nor labels hold a secret.
type Limiter struct {
	opts          LimitOptions
	byKey         *buckets[[sha256.Size]byte]
	byIP          *buckets[netip.Addr]
	keyHit, ipHit *metrics.Counter
}

// NewLimiter returns a Limiter; with both rates 0 it lets everything through.
func NewLimiter(o LimitOptions) *Limiter {
	if o.MaxTracked <= 0 {
		o.MaxTracked = DefaultMaxTracked
	}
	l := &Limiter{opts: o}
	if o.KeyRate > 0 {
		l.byKey = newBuckets[[sha256.Size]byte](o.KeyRate, o.MaxTracked)
	}
	if o.IPRate > 0 {
		l.byIP = newBuckets[netip.Addr](o.IPRate, o.MaxTracked)
	}
	if o.Metrics != nil {
		const help = "API requests answered 429, by the limit they hit"
		l.keyHit = o.Metrics.Counter("adsyn_api_rate_limited_total", help, "by", "key")
		l.ipHit = o.Metrics.Counter("adsyn_api_rate_limited_total", help, "by", "ip")
	}
	return l
}

// Wrap limits next.
func (l *Limiter) Wrap(next http.Handler) http.Handler {
	if l.byKey == nil && l.byIP == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains(l.opts.Exempt, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		now := time.Now()
		// The address first: a flood of made-up keys from one place is
		// stopped before it fills the key table.
		if l.byIP != nil {
			if wait, ok := l.byIP.take(clientAddr(r, l.opts.TrustedProxies), now); !ok {
				inc(l.ipHit)
				tooMany(w, wait, "too many requests from this address")
				return
			}
		}
		if l.byKey != nil {
			if k, ok := keyOf(r); ok {
				if wait, ok := l.byKey.take(k, now); !ok {
					inc(l.keyHit)
					tooMany(w, wait, "too many requests with this API key")
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func inc(c *metrics.Counter) {
	if c != nil {
		c.Inc()
	}
}

func tooMany(w http.ResponseWriter, wait time.Duration, msg string) {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	WriteError(w, http.StatusTooManyRequests, "rate_limited", msg+"; retry after "+strconv.Itoa(secs)+"s")
}

// keyOf is the hash of the bearer token, if the request has one.
func keyOf(r *http.Request) ([sha256.Size]byte, bool) {
	h := r.Header.Get("Authorization")
	if len(h) <= 7 || !strings.EqualFold(h[:7], "bearer ") {
		return [sha256.Size]byte{}, false
	}
	tok := strings.TrimSpace(h[7:])
	if tok == "" {
		return [sha256.Size]byte{}, false
	}
	if len(tok) > maxBearer {
		tok = tok[:maxBearer]
	}
	return sha256.Sum256([]byte(tok)), true
}

// clientAddr is the caller's address as the edge sees it: the connection's,
// or X-Forwarded-For's from a trusted proxy. An IPv6 caller is its /64,
// since one host holds a whole /64.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	remote, err := netip.ParseAddrPort(r.RemoteAddr)
	ip := remote.Addr()
	if err != nil {
		ip, _ = netip.ParseAddr(r.RemoteAddr) // invalid: all such callers share one bucket
	}
	if len(trusted) > 0 {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			ip = device.ClientIP(ip, []byte(strings.Join(xff, ",")), trusted)
		}
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return ip
}

// buckets is a table of token buckets, bounded: a bucket that has refilled
// is the same as none and is dropped; when the table is still full, an
// arbitrary entry goes, which only ever gives a caller more room, never less.
type buckets[K comparable] struct {
	rate, burst float64
	max         int
	mu          sync.Mutex
	m           map[K]*bucket
	swept       time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newBuckets[K comparable](rate float64, maxTracked int) *buckets[K] {
	return &buckets[K]{rate: rate, burst: max(1, 2*rate), max: maxTracked, m: map[K]*bucket{}}
}

// take spends a token of k's bucket, or says how long until there is one.
func (t *buckets[K]) take(k K, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.m[k]
	if !ok {
		t.makeRoom(now)
		b = &bucket{tokens: t.burst, last: now}
		t.m[k] = b
	}
	if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(t.burst, b.tokens+d*t.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / t.rate * float64(time.Second)), false
}

// makeRoom drops idle callers once a minute, and keeps the table under its
// bound; a sweep runs at most once a second, so a flood of new callers
// costs O(1) each.
func (t *buckets[K]) makeRoom(now time.Time) {
	since := now.Sub(t.swept)
	if len(t.m) < t.max && since < time.Minute {
		return
	}
	if since >= time.Second {
		t.swept = now
		full := time.Duration(t.burst / t.rate * float64(time.Second))
		for k, b := range t.m {
			if now.Sub(b.last) >= full {
				delete(t.m, k)
			}
		}
	}
	for k := range t.m {
		if len(t.m) < t.max {
			break
		}
		delete(t.m, k)
	}
}

// len is the number of tracked callers.
func (t *buckets[K]) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
