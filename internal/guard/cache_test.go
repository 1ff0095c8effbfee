package guard

import (
	"strings"
	"sync"
	"testing"
)

// cacheCorpus is every text of the guard's tables, every lexicon term in
// a phrase, and the benchmarks' texts: sensitive and clean, Latin,
// Cyrillic, escaped and disguised.
func cacheCorpus() []string {
	var texts []string
	for _, tc := range guardCases {
		texts = append(texts, tc.text)
	}
	Default().Terms(func(_, line string, _ []Word) {
		term := strings.ReplaceAll(line, "*", "")
		texts = append(texts, term, "cheap "+term+" near me", "https://x.example/"+strings.ReplaceAll(term, " ", "-"))
	})
	texts = append(texts, benchTexts...)
	texts = append(texts, "archive", "jewelry", "section", "hospitality", "", " ", "%", "\xff\xfe")
	return texts
}

// TestCacheAgrees holds the cache to the guard's own verdicts: for each
// text, asked first (a miss) and again (a hit), as bytes and as a string,
// in a cache of one slot (every text evicts the last) and in a large one.
func TestCacheAgrees(t *testing.T) {
	g := Default()
	texts := cacheCorpus()
	for _, size := range []int{1, 4096} {
		c := NewCache(g, size)
		for pass := range 3 {
			for _, text := range texts {
				wantCat, wantOK := g.Sensitive(text)
				if cat, ok := c.Sensitive(text); cat != wantCat || ok != wantOK {
					t.Fatalf("size %d pass %d: Cache.Sensitive(%q) = %q, %v; the guard says %q, %v", size, pass, text, cat, ok, wantCat, wantOK)
				}
				if cat, ok := c.SensitiveBytes([]byte(text)); cat != wantCat || ok != wantOK {
					t.Fatalf("size %d pass %d: Cache.SensitiveBytes(%q) = %q, %v; the guard says %q, %v", size, pass, text, cat, ok, wantCat, wantOK)
				}
			}
		}
	}
	// The literal table, through a warm cache.
	c := NewCache(g, 64)
	for range 2 {
		for _, tc := range guardCases {
			if got, ok := c.Sensitive(tc.text); ok != (tc.want != "") || got != tc.want {
				t.Errorf("Cache.Sensitive(%q) = %q, %v; want %q", tc.text, got, ok, tc.want)
			}
		}
	}
}

// TestCacheCopiesText: a verdict is remembered under a copy of the text,
// so a caller reusing its buffer cannot make one text's verdict another's.
func TestCacheCopiesText(t *testing.T) {
	c := NewCache(Default(), 1)
	buf := []byte("plumber berlin")
	if _, ok := c.SensitiveBytes(buf); ok {
		t.Fatal("plumber berlin flagged")
	}
	copy(buf, "hiv test      ")
	if cat, ok := c.SensitiveBytes(buf); !ok || cat != "health" {
		t.Fatalf("%q after reuse of the buffer = %q, %v; want health", buf, cat, ok)
	}
	if _, ok := c.Sensitive("plumber berlin"); ok {
		t.Fatal("plumber berlin flagged once its buffer was reused")
	}
}

// TestCacheLongText: a text past MaxCachedText is judged, not remembered.
func TestCacheLongText(t *testing.T) {
	c := NewCache(Default(), 8)
	long := strings.Repeat("plumber ", MaxCachedText/8) + "depression"
	for range 2 {
		if cat, ok := c.Sensitive(long); !ok || cat != "health" {
			t.Fatalf("long text = %q, %v; want health", cat, ok)
		}
	}
	for i := range c.slots {
		if v := c.slots[i].Load(); v != nil {
			t.Fatalf("a %d-byte text was remembered", len(v.text))
		}
	}
}

// TestCacheConcurrent: goroutines sharing a small cache, so that they
// evict each other's entries, each get the guard's verdict every time.
func TestCacheConcurrent(t *testing.T) {
	g := Default()
	texts := cacheCorpus()
	want := make([]string, len(texts))
	for i, text := range texts {
		want[i], _ = g.Sensitive(text)
	}
	c := NewCache(g, 16)
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for w := range 4 {
		wg.Go(func() {
			for n := range 3 * len(texts) {
				i := (n*7 + w*13) % len(texts)
				if cat, _ := c.SensitiveBytes([]byte(texts[i])); cat != want[i] {
					errs <- texts[i] + ": " + cat + ", want " + want[i]
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// FuzzCacheAgrees: whatever the text, the cache answers as the guard,
// on a miss, on a hit, and after another text took its slot.
func FuzzCacheAgrees(f *testing.F) {
	for _, tc := range guardCases {
		f.Add(tc.text, "plumber")
	}
	f.Add("https://x.example/page/1", "https://x.example/page/2")
	f.Fuzz(func(t *testing.T, text, other string) {
		g := Default()
		c := NewCache(g, 1)
		wantCat, wantOK := g.SensitiveBytes([]byte(text))
		for _, step := range []string{"miss", "hit", "evicted"} {
			if step == "evicted" {
				c.Sensitive(other)
			}
			if cat, ok := c.SensitiveBytes([]byte(text)); cat != wantCat || ok != wantOK {
				t.Fatalf("%s: Cache.SensitiveBytes(%q) = %q, %v; the guard says %q, %v", step, text, cat, ok, wantCat, wantOK)
			}
			if cat, ok := c.Sensitive(text); cat != wantCat || ok != wantOK {
				t.Fatalf("%s: Cache.Sensitive(%q) = %q, %v; the guard says %q, %v", step, text, cat, ok, wantCat, wantOK)
			}
		}
	})
}
