package adserver

import (
	"html"
	"maps"
	"strings"
	"testing"
	"unicode/utf8"
)

// The word-at-a-time tests agree with the byte tables for every byte value
// at every position of a word, next to safe and unsafe neighbours.
func TestWordScanners(t *testing.T) {
	for _, fill := range []byte{'a', ' ', '~', '"', 0x80} {
		for pos := range 8 {
			for c := range 256 {
				w := []byte(strings.Repeat(string(fill), 8))
				w[pos] = byte(c)
				x := load64(string(w), 0)
				wantJSON, wantHTML := false, false
				for _, b := range w {
					wantJSON = wantJSON || b >= utf8.RuneSelf || !jsonSafe[b]
					wantHTML = wantHTML || htmlEscape[b] != ""
				}
				if got := hasJSONSpecial(x); got != wantJSON {
					t.Fatalf("hasJSONSpecial(%q) = %v", w, got)
				}
				if got := hasHTMLSpecial(x); got != wantHTML {
					t.Fatalf("hasHTMLSpecial(%q) = %v", w, got)
				}
			}
		}
	}
}

// FuzzAppendHTML: the HTML escaping is html.EscapeString's.
func FuzzAppendHTML(f *testing.F) {
	for _, s := range []string{"", "plain text of some length", `<a href="x">&amp;</a>`, "it's", "\xff\xfe ok", "12345678&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendHTMLString([]byte("x"), s)), "x"+html.EscapeString(s); got != want {
			t.Fatalf("%q escapes to %q, want %q", s, got, want)
		}
	})
}

// FuzzDocTemplate: a document from the index's template, as HTML and as
// JSON text, is byte for byte the document rendered per request.
func FuzzDocTemplate(f *testing.F) {
	f.Add(`<a href="%%CLICK_URL%%">Call <b>now</b></a>`, "https://ads.example/click?t=abc", "https://img.example/a.png")
	f.Add("\xe2\x80%%CLICK_URL%%\u2028%%CLICK_URL%%", `https://h"&<>'/click?t=x`, "")
	f.Add("plain "+clickMark+" mark", "x", `"><script>`)
	f.Fuzz(func(t *testing.T, html, click, text string) {
		contents := map[CreativeType]*Content{
			HTML:   {HTML: html},
			Image:  {Image: text, Alt: html},
			Native: {Native: &NativeAd{Title: html, Body: text, Image: text, CTA: html, Sponsor: text}},
		}
		for typ, c := range contents {
			whole := appendDoc(nil, typ, c, 300, 250, nil, []byte(click))
			tm := newDocTmpl(typ, c, 300, 250)
			if tm == nil {
				if !strings.Contains(html+text, clickMark) {
					t.Fatalf("%s: no template for %q", typ, html)
				}
				continue
			}
			if got := tm.appendHTML(nil, []byte(click)); string(got) != string(whole) {
				t.Fatalf("%s html:\n got %q\nwant %q", typ, got, whole)
			}
			got := tm.appendJSONText([]byte(jsonDocHead), appendHTML(nil, []byte(click)))
			if want := appendJSONText(nil, string(whole)); string(got) != string(want) {
				t.Fatalf("%s json:\n got %q\nwant %q", typ, got, want)
			}
		}
	})
}

func BenchmarkAppendJSONDoc(b *testing.B) {
	doc := docHead + strings.Repeat(`<div class="x"><a href="https://example.com/landing?a=1&b=2">Fix it today — call us</a></div>`, 12) + docTail
	b.SetBytes(int64(len(doc)))
	buf := make([]byte, 0, 8192)
	for b.Loop() {
		buf = appendJSONText(buf[:0], doc)
	}
}

// A rebuild keeps the templates of unchanged creatives and renders a
// changed one (the catalog decodes a changed creative as a new value).
func TestDocTemplatesAcrossRebuilds(t *testing.T) {
	snap := BenchSnapshot(50, 3, 7)
	first := Build(snap, t0, nil)
	var id string
	for k := range snap.Creatives {
		id = k
		break
	}
	next := *snap
	next.Creatives = maps.Clone(snap.Creatives)
	changed := *snap.Creatives[id]
	changed.Content.Alt = "changed alt"
	next.Creatives[id] = &changed
	second := build(&next, t0, nil, first)

	rendered := 0
	for k, tm := range second.docs {
		old, had := first.docs[k]
		switch {
		case k.cr.ID == id && had:
			t.Errorf("the changed creative kept its old template")
		case k.cr.ID == id:
			rendered++
			if got := string(tm.appendHTML(nil, []byte("u"))); !strings.Contains(got, `alt="changed alt"`) {
				t.Errorf("changed creative renders %q", got)
			}
		case !had || old != tm:
			t.Errorf("creative %s rendered again", k.cr.ID)
		}
	}
	if rendered == 0 {
		t.Errorf("creative %s has no template after the change", id)
	}
	if len(second.docs) != len(first.docs) {
		t.Errorf("%d templates, then %d: the index keeps only those in use", len(first.docs), len(second.docs))
	}
}
