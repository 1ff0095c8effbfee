package privacy

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/guard"
)

// uncached is the Scrubber without any cache: the plain guard, every
// value scrubbed in full. It is the oracle the caches are held to.
func uncached(t testing.TB) *Scrubber {
	t.Helper()
	s, err := New(Options{Guard: guard.Default()})
	if err != nil {
		t.Fatal(err)
	}
	s.kept = nil
	return s
}

// cached is the default Scrubber with a kept cache of size slots.
func cached(t testing.TB, size int) *Scrubber {
	t.Helper()
	s := newScrubber(t)
	s.kept = newKeptCache(size)
	return s
}

// keptCorpus is every URL of TestURL's table and texts clean and dirty:
// sensitive terms, contact data, escapes, labels that recur on pages.
var keptCorpus = []string{
	"https://shop.example/plumbing/taps", "https://shop.example/p?utm_source=news&utm_medium=mail",
	"https://shop.example/p?email=john%40example.com&phone=%2B74951234567&utm_campaign=x", "https://shop.example/p?id=7#section",
	"https://shop.example/p?utm_term=hiv+test", "https://shop.example/p?utm_term=john%2540example.com",
	"https://example.org/hiv-test-results/positive", "https://example.org/%68%69%76/x", "https://example.org/%2568iv",
	"https://www.hiv.example/", "https://mosque.example", "https://gay-dating.example/x", "https://gaydating.example/x",
	"https://hivtest.example/", "https://xn--e1aat0ax6a.xn--p1ai/", "https://xn--80akjimbyk2a.xn--p1ai/plumbing",
	"https://user:pass@shop.example/p", "https://203.0.113.9/p", "http://[2001:db8::1]:8080/p", "https://shop.example:8443/p",
	"https://shop.example/users/john.doe@example.com/profile", "https://shop.example/u/john%40example.com",
	"https://shop.example/call-%2B7-495-123-45-67-now", "https://shop.example/order/12345678", "//shop.example/p",
	"/local/path?x=1", "/oncology/ward", "shop.example/p", "mailto:john@example.com", "javascript:alert(1)", "https://",
	"https://bad host/p", "HTTPS://Shop.Example/P", "https://pub.example/page/7", "https://pub.example/search",
	"plumber", "plumber near me, call 8 916 123-45-67", "hiv", "jane@doe.example", "taps", "home", "repair",
	"hiv-clinic", "signup john@example.com", "bench-site", "Pixel 8", "Pixel 8 +7 916 123 45 67", "depression",
	"%D0%B4%D0%B5%D0%BF%D1%80%D0%B5%D1%81%D1%81%D0%B8%D1%8F", "сантехник", "", " ", "%", "\xff\xfe",
}

// keptEvent puts v in every field the kept cache serves.
func keptEvent(v string) event.Event {
	return event.Event{Kind: event.KindSearch, URL: v, Referrer: v, Query: v, Site: v, Slot: v, Campaign: v,
		Creative: v, Name: v, Device: event.Device{Model: v}, Categories: []string{v, "plumbing", v}}
}

// scrubbed is e scrubbed by s, encoded: what would be stored.
func scrubbed(s *Scrubber, sc *Scratch, e event.Event) []byte {
	e.Categories = append([]string(nil), e.Categories...)
	s.Scrub(&e, sc)
	return e.Marshal()
}

// TestKeptCacheAgrees: an event scrubbed by a Scrubber that remembers what
// it kept is stored exactly as one scrubbed in full, on a miss, on a hit,
// and when every value evicts the last (a one-slot cache).
func TestKeptCacheAgrees(t *testing.T) {
	plain := uncached(t)
	var sc, scPlain Scratch
	for _, size := range []int{1, VerdictCacheSize} {
		s := cached(t, size)
		for pass := range 3 {
			for _, v := range keptCorpus {
				want := scrubbed(plain, &scPlain, keptEvent(v))
				if got := scrubbed(s, &sc, keptEvent(v)); !bytes.Equal(got, want) {
					var g, w event.Event
					_ = event.Unmarshal(got, &g)
					_ = event.Unmarshal(want, &w)
					t.Fatalf("size %d pass %d, %q:\n cached %+v\n   full %+v", size, pass, v, g, w)
				}
			}
		}
	}
}

// TestKeptCacheTables: TestURL's literal table through a warm cache.
func TestKeptCacheTables(t *testing.T) {
	s := cached(t, 64)
	var sc Scratch
	for range 2 {
		for _, v := range []struct{ in, want string }{
			{"https://shop.example/plumbing/taps", "https://shop.example/plumbing/taps"},
			{"https://shop.example/p?utm_term=hiv+test", "https://shop.example/p"},
			{"https://example.org/hiv-test-results/positive", "https://example.org"},
			{"https://www.hiv.example/", ""},
		} {
			if got := s.URL(&sc, v.in); got != v.want {
				t.Errorf("URL(%q) = %q, want %q", v.in, got, v.want)
			}
		}
	}
}

// TestKeptCacheCopies: a value is remembered under a copy, so request
// memory reused for another value is scrubbed as that value.
func TestKeptCacheCopies(t *testing.T) {
	s := cached(t, 1)
	var sc Scratch
	buf := []byte("plumber berlin")
	if got := s.text(&sc, str(buf)); got != "plumber berlin" {
		t.Fatalf("text(plumber berlin) = %q", got)
	}
	copy(buf, "hiv test      ")
	if got := s.text(&sc, str(buf)); got != "" {
		t.Fatalf("text(%q) after the buffer was reused = %q, want it dropped", buf, got)
	}
}

// TestKeptCacheLong: a value past maxKept is scrubbed, not remembered.
func TestKeptCacheLong(t *testing.T) {
	s := cached(t, 8)
	var sc Scratch
	long := "https://shop.example/" + strings.Repeat("a", maxKept)
	for range 2 {
		if got := s.URL(&sc, long); got != long {
			t.Fatalf("long URL changed")
		}
	}
	for i := range s.kept.slots {
		if v := s.kept.slots[i].Load(); v != nil {
			t.Fatalf("a %d-byte value was remembered", len(v.value))
		}
	}
}

// TestKeptCacheConcurrent: publishers sharing a small cache, evicting each
// other's values, store what a full scrub stores.
func TestKeptCacheConcurrent(t *testing.T) {
	plain := uncached(t)
	var sc Scratch
	want := make([][]byte, len(keptCorpus))
	for i, v := range keptCorpus {
		want[i] = scrubbed(plain, &sc, keptEvent(v))
	}
	s := cached(t, 8)
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for w := range 4 {
		wg.Go(func() {
			var sc Scratch
			for n := range 3 * len(keptCorpus) {
				i := (n*5 + w*11) % len(keptCorpus)
				if got := scrubbed(s, &sc, keptEvent(keptCorpus[i])); !bytes.Equal(got, want[i]) {
					errs <- keptCorpus[i]
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for v := range errs {
		t.Errorf("%q scrubbed otherwise through the shared cache", v)
	}
}

// FuzzKeptCacheAgrees: whatever the values, a cached Scrubber stores what
// a full scrub stores, on a miss, a hit and after the slot was taken.
func FuzzKeptCacheAgrees(f *testing.F) {
	for _, v := range keptCorpus {
		f.Add(v, "plumber")
	}
	plain := uncached(f)
	f.Fuzz(func(t *testing.T, v, other string) {
		var sc, scPlain Scratch
		s := cached(t, 1)
		want := scrubbed(plain, &scPlain, keptEvent(v))
		for _, step := range []string{"miss", "hit", "evicted"} {
			if step == "evicted" {
				scrubbed(s, &sc, keptEvent(other))
			}
			if got := scrubbed(s, &sc, keptEvent(v)); !bytes.Equal(got, want) {
				t.Fatalf("%s: %q scrubbed otherwise with the cache", step, v)
			}
		}
	})
}
