package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/metrics"
)

func limitedServer(t *testing.T, o LimitOptions) (*httptest.Server, *metrics.Registry) {
	t.Helper()
	reg := metrics.NewRegistry()
	o.Metrics = reg
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, 200, map[string]string{"status": "ok"}) })
	srv := httptest.NewServer(NewLimiter(o).Wrap(ok))
	t.Cleanup(srv.Close)
	return srv, reg
}

type answer struct {
	status     int
	retryAfter string
	body       ErrorBody
}

func call(t *testing.T, srv *httptest.Server, path, key, xff string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if resp.StatusCode != 200 {
		if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
			t.Fatalf("%s: body: %v", path, err)
		}
	}
	return a
}

func metricText(reg *metrics.Registry) string {
	var b bytes.Buffer
	reg.WriteText(&b)
	return b.String()
}

// wantLimited checks the 429 and returns its Retry-After.
func wantLimited(t *testing.T, a answer) time.Duration {
	t.Helper()
	if a.status != http.StatusTooManyRequests || a.body.Error.Code != "rate_limited" || a.body.Error.Message == "" {
		t.Fatalf("got %d %+v, want 429 rate_limited", a.status, a.body)
	}
	secs, err := strconv.Atoi(a.retryAfter)
	if err != nil || secs < 1 {
		t.Fatalf("Retry-After %q: want whole seconds ≥ 1", a.retryAfter)
	}
	return time.Duration(secs) * time.Second
}

func TestLimitPerKey(t *testing.T) {
	srv, reg := limitedServer(t, LimitOptions{KeyRate: 1, Exempt: []string{"/healthz"}})
	// Rate 1/s, burst 2: the third request at once is over.
	for i := range 2 {
		if a := call(t, srv, "/v1/sites", "adsyn_keyone", ""); a.status != 200 {
			t.Fatalf("request %d: %d", i+1, a.status)
		}
	}
	wait := wantLimited(t, call(t, srv, "/v1/sites", "adsyn_keyone", ""))
	if a := call(t, srv, "/v1/sites", "adsyn_keytwo", ""); a.status != 200 {
		t.Fatalf("another key: %d, want 200", a.status)
	}
	if a := call(t, srv, "/v1/sites", "", ""); a.status != 200 {
		t.Fatalf("no key (the IP limit is off): %d, want 200", a.status)
	}
	for range 5 {
		if a := call(t, srv, "/healthz", "adsyn_keyone", ""); a.status != 200 {
			t.Fatalf("/healthz: %d, want 200", a.status)
		}
	}
	if got := metricText(reg); !strings.Contains(got, `adsyn_api_rate_limited_total{by="key"} 1`) ||
		!strings.Contains(got, `adsyn_api_rate_limited_total{by="ip"} 0`) || strings.Contains(got, "keyone") {
		t.Errorf("metrics:\n%s", got)
	}
	// Retry-After is an upper bound: once it has passed, a token is back.
	time.Sleep(wait)
	if a := call(t, srv, "/v1/sites", "adsyn_keyone", ""); a.status != 200 {
		t.Fatalf("after Retry-After %s: %d, want 200", wait, a.status)
	}
}

func TestLimitPerAddress(t *testing.T) {
	// The test client is 127.0.0.1; X-Forwarded-For counts only from it
	// when it is a trusted proxy.
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
	}{
		{"untrusted", nil},
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, reg := limitedServer(t, LimitOptions{IPRate: 1, KeyRate: 100, TrustedProxies: tc.trusted})
			for i := range 2 {
				// A new key each time: the address limit holds regardless.
				if a := call(t, srv, "/x", fmt.Sprintf("adsyn_%d", i), "203.0.113.7"); a.status != 200 {
					t.Fatalf("request %d: %d", i+1, a.status)
				}
			}
			wantLimited(t, call(t, srv, "/x", "adsyn_9", "203.0.113.7"))
			other := call(t, srv, "/x", "", "198.51.100.1")
			if tc.trusted == nil {
				wantLimited(t, other) // a made-up header does not give a new address
			} else if other.status != 200 {
				t.Fatalf("another forwarded address: %d, want 200", other.status)
			}
			if got := metricText(reg); !strings.Contains(got, `adsyn_api_rate_limited_total{by="ip"}`) ||
				strings.Contains(got, `{by="ip"} 0`) || strings.Contains(got, "203.0.113") {
				t.Errorf("metrics:\n%s", got)
			}
		})
	}
}

func TestLimitOffPassesEverything(t *testing.T) {
	srv, reg := limitedServer(t, LimitOptions{})
	for i := range 50 {
		if a := call(t, srv, "/x", "adsyn_a", ""); a.status != 200 {
			t.Fatalf("request %d: %d", i+1, a.status)
		}
	}
	if got := metricText(reg); !strings.Contains(got, `{by="key"} 0`) {
		t.Errorf("metrics:\n%s", got)
	}
}

func TestBucketsStayBounded(t *testing.T) {
	b := newBuckets[netip.Addr](1, 3)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		b.take(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), now)
		if n := b.len(); n > 3 {
			t.Fatalf("after %d callers: %d tracked, bound 3", i+1, n)
		}
	}
	// Idle callers (refilled after burst/rate = 2s) are swept within a minute.
	if _, ok := b.take(netip.AddrFrom4([4]byte{198, 51, 100, 1}), now.Add(time.Minute)); !ok {
		t.Fatal("a new caller was refused")
	}
	if n := b.len(); n != 1 {
		t.Errorf("after a minute idle: %d tracked, want 1", n)
	}
}

func TestBucketRefill(t *testing.T) {
	b := newBuckets[string](0.5, 10) // burst max(1, 1) = 1
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, ok := b.take("k", now); !ok {
		t.Fatal("first request refused")
	}
	wait, ok := b.take("k", now)
	if ok || wait != 2*time.Second {
		t.Fatalf("second: ok %v wait %s, want refused for 2s", ok, wait)
	}
	if _, ok := b.take("k", now.Add(1999*time.Millisecond)); ok {
		t.Fatal("passed before the wait")
	}
	if _, ok := b.take("k", now.Add(4*time.Second)); !ok {
		t.Fatal("refused after the wait")
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:5000", nil, "192.0.2.1"},
		{"192.0.2.1:5000", []string{"203.0.113.9"}, "192.0.2.1"},
		{"10.1.1.1:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"10.1.1.1:5000", []string{"203.0.113.9, 10.2.2.2", "10.3.3.3"}, "203.0.113.9"},
		{"[2001:db8:1:2:3:4:5:6]:443", nil, "2001:db8:1:2::"},
		{"[::ffff:192.0.2.1]:443", nil, "192.0.2.1"},
		{"@", nil, "invalid IP"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientAddr(r, trusted).String(); got != tc.want {
			t.Errorf("%s %v: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

func FuzzLimiterIdentity(f *testing.F) {
	f.Add("192.0.2.1:5000", "203.0.113.9, 10.2.2.2", "Bearer adsyn_abc")
	f.Add("[::1]:1", "garbage,,", "bearer ")
	f.Add("@", strings.Repeat("1.2.3.4,", 100), "Basic x")
	f.Add("10.0.0.1:1", "[2001:db8::1]:80", "Bearer "+strings.Repeat("a", 1000))
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, remote, xff, authz string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("Authorization", authz)
		ip := clientAddr(r, trusted)
		if ip.Is4In6() || (ip.Is6() && ip != netip.PrefixFrom(ip, 64).Masked().Addr()) {
			t.Errorf("address %s not normalized", ip)
		}
		k1, ok1 := keyOf(r)
		k2, ok2 := keyOf(r)
		if k1 != k2 || ok1 != ok2 {
			t.Error("key not stable")
		}
	})
}
