package taxonomy

import (
	"strings"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/guard"
)

// Contribution is what one event adds to one segment, and the rule that
// fired. Its strings belong to the taxonomy: they never come from the event.
type Contribution struct {
	Segment string
	Weight  float64
	Rule    string
}

// maxPerEvent bounds the contributions of one event, ancestors included.
const maxPerEvent = 32

// Match appends to dst what e contributes to the taxonomy's segments. When
// the event's search query, URL or a page category holds a sensitive term
// it contributes nothing, and sensitive names the category (P1). Only what
// a visitor chose to see counts (page views, searches, clicks, conversions,
// calls, custom events); ad impressions and errors contribute nothing. Match
// is pure and allocates nothing once dst has room.
func (t *Taxonomy) Match(dst []Contribution, e *event.Event) (out []Contribution, sensitive string) {
	// The query and the URL are folded once, for the guard and the rules.
	fq, fu := guard.AcquireFolder(), guard.AcquireFolder()
	defer guard.ReleaseFolder(fq)
	defer guard.ReleaseFolder(fu)
	g := t.guard
	var query []byte
	if e.Query != "" {
		query = fq.Fold(e.Query)
		if cat, ok := g.SensitiveFolded(fq); ok {
			return dst, cat
		}
	}
	if e.URL != "" {
		fu.Fold(e.URL)
		if cat, ok := g.SensitiveFolded(fu); ok {
			return dst, cat
		}
	}
	for _, c := range e.Categories {
		fu.Fold(c)
		if cat, ok := g.SensitiveFolded(fu); ok {
			return dst, cat
		}
	}
	switch e.Kind {
	case event.KindPageview, event.KindSearch, event.KindClick, event.KindConversion, event.KindCall, event.KindCustom:
	default:
		return dst, ""
	}
	start := len(dst)
	add := func(r int32) {
		ru := &t.rules[r]
		for i := start; i < len(dst); i++ {
			if dst[i].Segment == ru.id {
				if ru.weight > dst[i].Weight {
					dst[i].Weight, dst[i].Rule = ru.weight, ru.label
				}
				return
			}
		}
		if len(dst)-start < maxPerEvent {
			dst = append(dst, Contribution{Segment: ru.id, Weight: ru.weight, Rule: ru.label})
		}
	}
	if len(query) > 0 && t.keywords.Len() > 0 {
		t.keywords.Scan(query, func(tm *guard.Term) bool {
			add(tm.Val)
			return false
		})
	}
	us := acquireURLScratch()
	defer releaseURLScratch(us)
	t.urls.match(us, e.URL, add)
	if len(t.cats) > 0 {
		for _, c := range e.Categories {
			for _, r := range t.cats[string(fu.Fold(c))] {
				add(r)
			}
		}
	}
	if l := PrimaryLang(e.Lang); l != "" {
		for _, r := range t.langs[l] {
			add(r)
		}
	}
	// Parents get a share of what their children got, unless they got more.
	direct := len(dst)
	for i := start; i < direct; i++ {
		c := dst[i]
		w := c.Weight
		seg := t.byID[c.Segment]
		for p := t.parent[seg]; p >= 0; p = t.parent[p] {
			w *= parentShare
			pid := t.file.Segments[p].ID
			found := false
			for j := start; j < len(dst); j++ {
				if dst[j].Segment == pid {
					if w > dst[j].Weight {
						dst[j].Weight, dst[j].Rule = w, c.Rule
					}
					found = true
					break
				}
			}
			if !found && len(dst)-start < maxPerEvent {
				dst = append(dst, Contribution{Segment: pid, Weight: w, Rule: c.Rule})
			}
		}
	}
	return dst, ""
}

// Sensitive reports whether e's search query, URL or page categories hold a
// sensitive term, and its category.
func (t *Taxonomy) Sensitive(e *event.Event) (category string, ok bool) {
	g := t.guard
	if cat, ok := g.Sensitive(e.Query); ok {
		return cat, true
	}
	if cat, ok := g.Sensitive(e.URL); ok {
		return cat, true
	}
	for _, c := range e.Categories {
		if cat, ok := g.Sensitive(c); ok {
			return cat, true
		}
	}
	return "", false
}

// twoLetter interns lower-case two-letter subtags, so PrimaryLang returns a
// constant, not a piece of the event.
var twoLetter = func() (t [26 * 26]string) {
	for a := range 26 {
		for b := range 26 {
			t[a*26+b] = string([]byte{byte('a' + a), byte('a' + b)})
		}
	}
	return t
}()

// PrimaryLang returns the primary subtag of a language tag, lower-case ("ru"
// for "ru-RU" or "RU"), or "" when it is not two or three letters.
func PrimaryLang(s string) string {
	n := strings.IndexAny(s, "-_,;")
	if n < 0 {
		n = len(s)
	}
	if n < 2 || n > 3 {
		return ""
	}
	var b [3]byte
	for i := range n {
		c := s[i] | 0x20 // lower-case a letter
		if c < 'a' || c > 'z' {
			return ""
		}
		b[i] = c
	}
	if n == 2 {
		return twoLetter[int(b[0]-'a')*26+int(b[1]-'a')]
	}
	if s[:3] == string(b[:]) {
		return strings.Clone(s[:3]) // a clone, so the event can go
	}
	return string(b[:])
}
