package segments

import (
	"bytes"
	"strings"
	"testing"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/guard"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// FuzzMatchApply drives the pure core with arbitrary signals: whatever comes
// in, the record holds only taxonomy segments that are not sensitive, only
// the taxonomy's rule labels, and never the query.
func FuzzMatchApply(f *testing.F) {
	f.Add(uint8(event.KindSearch), "срочно сантехник", "https://m.example/uslugi/santehnika", "plumbing", "ru-RU")
	f.Add(uint8(event.KindSearch), "сантехник психолог", "", "", "ru")
	f.Add(uint8(event.KindPageview), "", "https://m.example/services/plumbing?q=%D0%B4%D0%B5%D0%BF", "Health", "en")
	f.Add(uint8(event.KindPageview), "", "//church.example/services/plumbing", "", "")
	f.Add(uint8(event.KindImpression), "plumber", "", "", "de")
	tax := taxonomy.Default()
	pol := DefaultPolicy()
	f.Fuzz(func(t *testing.T, kind uint8, query, u, category, lang string) {
		e := event.Event{Kind: event.Kind(kind % 10), TS: 1_700_000_000_000, Query: query, URL: u, Lang: lang}
		if category != "" {
			e.Categories = []string{category}
		}
		contribs, sens := tax.Match(nil, &e)
		_, q := guard.Sensitive(query)
		_, ur := guard.Sensitive(u)
		_, c := guard.Sensitive(category)
		if (q || ur || c) != (sens != "") {
			t.Fatalf("Match says %q; the guard says query %v URL %v category %v", sens, q, ur, c)
		}
		if sens != "" && len(contribs) > 0 {
			t.Fatalf("a sensitive event contributed %v", contribs)
		}
		r := Record{Visitor: "v"}
		pol.apply(&r, []change{{seq: 1, ts: e.TS, lang: taxonomy.PrimaryLang(lang), contribs: contribs, sensitive: sens != ""}}, tax)
		if !RecordAllowed(&r, tax) {
			t.Fatalf("record not allowed: %+v", r)
		}
		enc := r.AppendMsgpack(nil)
		if len(query) >= 4 && bytes.Contains(enc, []byte(query)) && !taxonomyText(&r, query) && query != "v" {
			t.Fatalf("the record holds the query %q: %q", query, enc)
		}
	})
}

// taxonomyText reports whether text lies within a string the record holds
// that is the taxonomy's own (a segment id, a rule label) or a language subtag.
func taxonomyText(r *Record, text string) bool {
	for _, s := range r.Segments {
		if strings.Contains(s.ID, text) || strings.Contains(s.Rule, text) {
			return true
		}
	}
	for _, l := range r.Langs {
		if strings.Contains(l, text) {
			return true
		}
	}
	return false
}
