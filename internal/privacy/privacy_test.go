package privacy

import (
	"bytes"
	"testing"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/guard"
)

var testGuard = guard.Default()

func newScrubber(t testing.TB) *Scrubber {
	t.Helper()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestURL(t *testing.T) {
	s := newScrubber(t)
	var sc Scratch
	for _, tt := range []struct{ in, want string }{
		{"https://shop.example/plumbing/taps", "https://shop.example/plumbing/taps"},
		{"https://shop.example/p?utm_source=news&utm_medium=mail", "https://shop.example/p?utm_source=news&utm_medium=mail"},
		{"https://shop.example/p?email=john%40example.com&phone=%2B74951234567&utm_campaign=x", "https://shop.example/p?utm_campaign=x"},
		{"https://shop.example/p?id=7#section", "https://shop.example/p"},
		{"https://shop.example/p?utm_term=hiv+test", "https://shop.example/p"},
		{"https://shop.example/p?utm_term=john%2540example.com", "https://shop.example/p"},
		{"https://example.org/hiv-test-results/positive", "https://example.org"},
		{"https://example.org/%68%69%76/x", "https://example.org"},
		{"https://example.org/%2568iv", "https://example.org"},
		{"https://www.hiv.example/", ""},
		{"https://mosque.example", ""},
		{"https://gay-dating.example/x", ""},
		{"https://gaydating.example/x", ""},
		{"https://hivtest.example/", ""},
		{"https://xn--e1aat0ax6a.xn--p1ai/", ""},                                                     // мечеть.рф
		{"https://xn--80akjimbyk2a.xn--p1ai/plumbing", "https://xn--80akjimbyk2a.xn--p1ai/plumbing"}, // сантехник.рф
		{"https://user:pass@shop.example/p", "https://shop.example/p"},
		{"https://203.0.113.9/p", ""},
		{"http://[2001:db8::1]:8080/p", ""},
		{"https://shop.example:8443/p", "https://shop.example:8443/p"},
		{"https://shop.example/users/john.doe@example.com/profile", "https://shop.example/users//profile"},
		{"https://shop.example/u/john%40example.com", "https://shop.example/u/"},
		{"https://shop.example/call-%2B7-495-123-45-67-now", "https://shop.example/call--now"},
		{"https://shop.example/order/12345678", "https://shop.example/order/"},
		{"//shop.example/p", "//shop.example/p"},
		{"/local/path?x=1", "/local/path"},
		{"/oncology/ward", ""},
		{"shop.example/p", "shop.example/p"},
		{"mailto:john@example.com", ""},
		{"javascript:alert(1)", ""},
		{"https://", ""},
		{"https://bad host/p", ""},
		{"HTTPS://Shop.Example/P", "HTTPS://Shop.Example/P"},
	} {
		if got := s.URL(&sc, tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestScrub(t *testing.T) {
	s := newScrubber(t)
	var sc Scratch
	e := event.Event{
		Kind:       event.KindSearch,
		Visitor:    "AbCdEfGhIjKlMnOpQrStUv",
		URL:        "https://example.org/hiv-test-results/positive?email=a%40b.example",
		Referrer:   "https://search.example/?q=abortion",
		Query:      "plumber near me, call 8 916 123-45-67",
		Categories: []string{"plumbing", "hiv", "jane@doe.example", "taps"},
		Site:       "hiv-clinic",
		Slot:       "top",
		Name:       "signup john@example.com",
		IP:         "203.0.113.77",
		Area:       "+7 495",
		Device:     event.Device{Type: "mobile", OS: "Android", OSVersion: "14.0.0", Model: "Pixel 8 +7 916 123 45 67"},
	}
	s.Scrub(&e, &sc)
	want := event.Event{
		Kind:       event.KindSearch,
		Visitor:    "AbCdEfGhIjKlMnOpQrStUv",
		URL:        "https://example.org",
		Referrer:   "https://search.example/",
		Query:      "plumber near me, call",
		Categories: []string{"plumbing", "taps"},
		Slot:       "top",
		Name:       "signup",
		IP:         "203.0.113.0",
		Area:       "+7 495",
		Device:     event.Device{Type: "mobile", OS: "Android", OSVersion: "14.0.0", Model: "Pixel"}, // the 8 joins the phone run: recall first
	}
	if got, w := e.Marshal(), want.Marshal(); !bytes.Equal(got, w) {
		var g event.Event
		_ = event.Unmarshal(got, &g)
		t.Errorf("scrubbed\n got %+v\nwant %+v", g, want)
	}
}

func TestIP(t *testing.T) {
	var sc Scratch
	for _, tt := range []struct {
		v4, v6   int
		in, want string
	}{
		{0, 0, "203.0.113.77", "203.0.113.0"},
		{0, 0, "2001:db8:85a3:1:2:3:4:5", "2001:db8:85a3::"},
		{0, 0, "::ffff:203.0.113.77", "203.0.113.0"},
		{16, 32, "203.0.113.77", "203.0.0.0"},
		{16, 32, "2001:db8:85a3::1", "2001:db8::"},
		{-1, -1, "203.0.113.77", "0.0.0.0"}, // Exact, zero bits kept
		{-1, -1, "2001:db8:85a3::1", "::"},
		{0, 0, "not an ip", ""},
		{0, 0, "203.0.113.77:443", ""},
	} {
		o := Options{Guard: testGuard, IPv4Bits: tt.v4, IPv6Bits: tt.v6}
		if tt.v4 < 0 {
			o = Options{Exact: true}
		}
		s, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		e := event.Event{IP: tt.in}
		s.Scrub(&e, &sc)
		if e.IP != tt.want {
			t.Errorf("/%d /%d %q = %q, want %q", tt.v4, tt.v6, tt.in, e.IP, tt.want)
		}
	}
	for _, o := range []Options{{Guard: testGuard, IPv4Bits: 32, IPv6Bits: 48}, {Guard: testGuard, IPv4Bits: 24, IPv6Bits: 128}, {IPv4Bits: -1}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestArea(t *testing.T) {
	for in, ok := range map[string]bool{"": true, "+7": true, "+7 495": true, "+358 9": true, "+7 4951234": false, "7 495": false, "+7 (495)": false} {
		if validArea(in) != ok {
			t.Errorf("validArea(%q) = %v", in, !ok)
		}
	}
}

func FuzzScrub(f *testing.F) {
	f.Add("https://example.org/hiv-test?email=a%40b.example#x", "call +7 495 123-45-67", "site", "2001:db8::1")
	f.Add("//u:p@host.example:80/a%2540b.example/c", "john (at) example (dot) com", "hiv", "203.0.113.1")
	f.Add("/%%%zz", "", "%F0%9F", "::ffff:1.2.3.4")
	s := newScrubber(f)
	f.Fuzz(func(t *testing.T, u, q, site, ip string) {
		var sc Scratch
		e := event.Event{URL: u, Referrer: u, Query: q, Site: site, IP: ip, Categories: []string{q, site}}
		s.Scrub(&e, &sc)
		for _, v := range []string{e.URL, e.Referrer, e.Query, e.Site} {
			d := sc.decode(v, false)
			if _, bad := testGuard.SensitiveBytes(d); bad {
				t.Fatalf("sensitive text kept: %q", v)
			}
			if k, has := HasContact(d); has && v != e.URL && v != e.Referrer {
				t.Fatalf("%s kept in %q", k, v)
			}
		}
		if e.IP != "" && e.IP != s.ip(&sc, e.IP) {
			t.Fatalf("IP %q not truncated", e.IP)
		}
	})
}
