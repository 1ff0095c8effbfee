package app_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/guard"
)

// secrets collects what an injected value must never leave in the stream,
// in every form a door may see it.
type secrets map[string]string // form → what it is

func (s secrets) add(what string, forms ...string) {
	for _, f := range forms {
		s[f] = what
		s[url.QueryEscape(f)] = what
		s[url.PathEscape(f)] = what
	}
}

// lexiconWords are single-word, whole terms of the built-in lexicon, at
// least four bytes long and not inside the vocabulary a clean event holds.
func lexiconWords(t *testing.T) []string {
	const vocabulary = "demo demo-house demo-plumbing-repairs demo-tutors-education top side shop plumbing taps home kitchen garden " +
		"door-calls first linux desktop chrome mozilla applewebkit gecko safari khtml example news mail inbound pageview search custom conversion"
	var out []string
	guard.Default().Terms(func(_, line string, words []guard.Word) {
		if len(words) == 1 && len(line) >= 4 && !strings.ContainsAny(line, "* ") && !strings.Contains(vocabulary, strings.ToLower(line)) {
			out = append(out, line)
		}
	})
	if len(out) < 50 {
		t.Fatalf("only %d lexicon words", len(out))
	}
	return out
}

// TestPropertyNothingLeaks injects sensitive words, emails, phones and full
// IPs anywhere in random requests at every door; the bytes stored in
// ADSYN_EVENTS hold none of them, in any form.
func TestPropertyNothingLeaks(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	d := openDoors(t, doorConfig(t, t.TempDir()))
	words := lexiconWords(t)
	leak := secrets{}
	token := func() string {
		b := make([]byte, 9)
		for i := range b {
			b[i] = "bcdfghjkmnpqrstvwxz"[r.IntN(19)]
		}
		return string(b)
	}
	word := func() string {
		w := words[r.IntN(len(words))]
		leak.add("sensitive word", w, strings.ToLower(w))
		return w
	}
	email := func() string {
		local, dom := token(), token()
		leak.add("email", local)
		switch r.IntN(4) {
		case 0:
			return local + "@" + dom + ".example"
		case 1:
			return local + "%40" + dom + ".example"
		case 2:
			return local + " (at) " + dom + " (dot) example"
		}
		return strings.ToUpper(local) + "@" + dom + ".example"
	}
	phone := func() string {
		n := fmt.Sprintf("%03d%07d", 900+r.IntN(99), r.IntN(10_000_000))
		leak.add("phone", n, n[3:])
		switch r.IntN(4) {
		case 0:
			return "+7 " + n[:3] + " " + n[3:6] + "-" + n[6:8] + "-" + n[8:]
		case 1:
			return "8" + n
		case 2:
			return "(" + n[:3] + ") " + n[3:6] + "-" + n[6:]
		}
		return "+44." + n[:3] + "." + n[3:6] + "." + n[6:]
	}
	ip := func() string {
		var a string
		if r.IntN(2) == 0 {
			a = fmt.Sprintf("198.51.%d.%d", r.IntN(256), 1+r.IntN(254))
		} else {
			a = fmt.Sprintf("2001:db8:%x:%x::%x", r.IntN(65536), 1+r.IntN(65535), 1+r.IntN(65535))
		}
		leak.add("ip", a)
		return a
	}
	dirt := func() string {
		switch r.IntN(5) {
		case 0:
			return word()
		case 1:
			return email()
		case 2:
			return phone()
		case 3:
			return ip()
		}
		return "plumbing"
	}
	clean := []string{"plumbing", "taps", "home", "kitchen", "garden"}
	pick := func() string {
		if r.IntN(3) == 0 {
			return dirt()
		}
		return clean[r.IntN(len(clean))]
	}
	pageURL := func() string {
		host := "shop.example"
		if r.IntN(6) == 0 {
			host = strings.ToLower(word()) + ".example"
		}
		return "https://" + host + "/" + pick() + "/" + pick() + "?utm_term=" + url.QueryEscape(pick()) + "&x=" + url.QueryEscape(pick()) + "#" + pick()
	}

	const rounds = 120
	for i := range rounds {
		xff := ""
		if r.IntN(2) == 0 {
			xff = ip()
		}
		switch door := r.IntN(4); door {
		case 0, 1: // the pixel, GET or POST, any kind it takes
			kind := []string{"pageview", "search", "conversion", "custom", "error"}[r.IntN(5)]
			q := url.Values{"e": {kind}, "u": {pageURL()}, "r": {pageURL()}, "q": {pick() + " " + pick()},
				"c": {pick() + "," + pick()}, "site": {pick()}, "n": {pick()}}
			if door == 0 {
				if code, _ := d.edgeDo(t, "GET", "/p.gif?"+q.Encode(), "", xff); code != 200 {
					t.Fatalf("round %d: pixel %d", i, code)
				}
			} else if code, _ := d.edgeDo(t, "POST", "/p", q.Encode(), xff); code != 204 {
				t.Fatalf("round %d: beacon %d", i, code)
			}
		case 2: // /ad, then its viewable beacon and click
			q := url.Values{"site": {"demo"}, "slot": {"top"}, "url": {pageURL()}, "c": {pick() + "," + pick()}}
			code, _ := d.edgeDo(t, "GET", "/ad?"+q.Encode(), "", xff)
			if code != 200 && code != 204 {
				t.Fatalf("round %d: /ad %d", i, code)
			}
		case 3: // a call report
			typ := "inbound"
			if r.IntN(2) == 0 {
				typ = "in-" + strings.NewReplacer(" ", "", "-", "", "(", "", ")", "", "+", "", ".", "").Replace(phone())
			}
			body := `{"tracking_number":"` + doorNumber + `","start":"` + time.Now().Add(-time.Duration(i)*time.Second).UTC().Format(time.RFC3339) +
				`","duration_s":` + fmt.Sprint(r.IntN(600)) + `,"call_type":"` + typ + `","caller_number":"` + phone() + `"}`
			if code, resp := d.api(t, "POST", "/v1/events/call", d.keys["telephony"], body); code != 202 {
				t.Fatalf("round %d: call %d %s", i, code, resp)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.a.Publisher().Stop(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, _ := raw(t, d.a.Conn().JS, 0)
	if len(msgs) == 0 {
		t.Fatal("nothing stored")
	}
	all := bytes.Join(msgs, []byte{0})
	lower := bytes.ToLower(all)
	for form, what := range leak {
		if bytes.Contains(all, []byte(form)) || bytes.Contains(lower, []byte(strings.ToLower(form))) {
			t.Errorf("%s %q is stored", what, form)
		}
	}
	t.Logf("%d messages, %d injected forms checked", len(msgs), len(leak))
}
