package device

import (
	"fmt"
	"testing"

	"github.com/adsyn/adsyn/internal/event"
)

// TestCacheAnswersAsParse holds the cache to Parse and IsBot, over more
// distinct header sets than it has slots (so some share a slot and evict
// each other), each asked twice, with the header bytes overwritten after
// every call: an answer of the second round that came from the cache
// owns its strings.
func TestCacheAnswersAsParse(t *testing.T) {
	bases := []Hints{
		{UA: []byte("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.%d.0 Mobile Safari/537.36")},
		{UA: []byte("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.%d.0 Safari/537.36"),
			CHUA: []byte(`"Chromium";v="130", "Google Chrome";v="130"`), CHMobile: []byte("?0"), CHPlatform: []byte(`"Windows"`),
			CHPlatformVersion: []byte(`"15.0.0"`)},
		{UA: []byte("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.%d.0 Mobile Safari/537.36"),
			CHMobile: []byte("?1"), CHPlatform: []byte(`"Android"`), CHModel: []byte(`"Pixel %d"`)},
		{UA: []byte("Googlebot/2.1 (+http://www.google.com/bot.html) %d")},
		{UA: []byte("%d")},
	}
	var c Cache
	distinct := 0
	for round := range 2 {
		for i := range CacheSlots + 1000 {
			base := bases[i%len(bases)]
			h := Hints{UA: fmt.Appendf(nil, string(base.UA), i), CHUA: clone(base.CHUA), CHMobile: clone(base.CHMobile),
				CHPlatform: clone(base.CHPlatform), CHPlatformVersion: clone(base.CHPlatformVersion)}
			if base.CHModel != nil {
				h.CHModel = fmt.Appendf(nil, string(base.CHModel), i)
			}
			var want, got event.Device
			Parse(h, &want)
			want = event.Device{Type: want.Type, OS: want.OS, OSVersion: string([]byte(want.OSVersion)), Model: string([]byte(want.Model)), Browser: want.Browser}
			wantBot := IsBot(h.UA)
			gotBot := c.Parse(h, &got)
			if got != want || gotBot != wantBot {
				t.Fatalf("round %d, set %d: cache %+v bot %v; Parse %+v bot %v", round, i, got, gotBot, want, wantBot)
			}
			for _, b := range [][]byte{h.UA, h.CHModel, h.CHPlatformVersion} {
				for j := range b {
					b[j] = 'x'
				}
			}
			if round == 0 {
				distinct++
			}
		}
	}
	if distinct <= CacheSlots {
		t.Fatalf("only %d distinct sets for %d slots: no slot was shared", distinct, CacheSlots)
	}
}

// TestCacheSetsDifferingInOneHint: the same User-Agent with another Client
// Hint is another answer.
func TestCacheSetsDifferingInOneHint(t *testing.T) {
	ua := []byte("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36")
	var c Cache
	var d event.Device
	c.Parse(Hints{UA: ua, CHMobile: []byte("?1")}, &d)
	if d.Type != TypeMobile {
		t.Fatalf("?1: %+v", d)
	}
	c.Parse(Hints{UA: ua, CHMobile: []byte("?0")}, &d)
	if d.Type != TypeTablet {
		t.Fatalf("?0 on Android: %+v", d)
	}
	c.Parse(Hints{UA: ua, CHMobile: []byte("?1")}, &d)
	if d.Type != TypeMobile {
		t.Fatalf("?1 again: %+v", d)
	}
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// TestCacheConcurrent: goroutines asking about the same few User-Agents at
// once (first misses storing an entry while others read the slot) each get
// Parse's answer; run with -race.
func TestCacheConcurrent(t *testing.T) {
	uas := [][]byte{
		[]byte("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"),
		[]byte("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"),
		[]byte("curl/8.5.0"),
	}
	want := make([]event.Device, len(uas))
	for i, ua := range uas {
		Parse(Hints{UA: ua}, &want[i])
	}
	var c Cache
	done := make(chan error, 4)
	for g := range 4 {
		go func() {
			for i := range 2000 {
				k := (i + g) % len(uas)
				var d event.Device
				bot := c.Parse(Hints{UA: uas[k]}, &d)
				if d != want[k] || bot != IsBot(uas[k]) {
					done <- fmt.Errorf("%s: %+v bot %v, want %+v", uas[k], d, bot, want[k])
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
