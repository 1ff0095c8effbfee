package taxonomy

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/adsyn/adsyn/internal/guard"
)

func seg(id string, cat Category, rules Rules) Segment {
	return Segment{ID: id, Name: "Name of " + id, Category: cat, Rules: rules}
}

func TestDefaultTaxonomy(t *testing.T) {
	tax := Default()
	if tax.Len() < 60 {
		t.Errorf("%d segments, want at least 60", tax.Len())
	}
	var en, ru int
	for _, s := range tax.File().Segments {
		if !s.Category.Valid() || s.Category.Sensitive() {
			t.Errorf("%s: category %s", s.ID, s.Category)
		}
		for _, k := range s.Rules.Keywords {
			if strings.ContainsFunc(k, func(r rune) bool { return r >= 'а' && r <= 'я' }) {
				ru++
			} else {
				en++
			}
		}
		if err := tax.CheckTarget(s.ID); err != nil {
			t.Errorf("CheckTarget(%s): %v", s.ID, err)
		}
	}
	if en < 100 || ru < 100 {
		t.Errorf("%d English and %d Russian keywords", en, ru)
	}
	// Medical and psychological services are health: not segments.
	for _, text := range []string{"psychologist", "психолог", "dentist", "стоматолог", "massage therapist", "логопед"} {
		for _, s := range tax.File().Segments {
			for _, k := range s.Rules.Keywords {
				if strings.Contains(k, text) {
					t.Errorf("%s has keyword %q", s.ID, k)
				}
			}
		}
	}
	if err := tax.CheckTarget("health.dentistry"); !errors.Is(err, ErrSensitive) {
		t.Errorf("CheckTarget of a sensitive id: %v", err)
	}
	for _, id := range []string{"hivtest", "gaydating", "mental.helpdepression", "psikhiatr"} {
		if err := tax.CheckTarget(id); !errors.Is(err, ErrSensitive) {
			t.Errorf("CheckTarget(%q): %v", id, err)
		}
	}
	if err := tax.CheckTarget("no.such"); !errors.Is(err, ErrInvalidTaxonomy) {
		t.Errorf("CheckTarget of an unknown id: %v", err)
	}
}

func TestTaxonomyRefuses(t *testing.T) {
	ok := seg("home", CategoryHome, Rules{Keywords: []string{"plumber*"}})
	for _, tc := range []struct {
		name      string
		s         Segment
		sensitive bool
		reason    string // in the message
	}{
		{"sensitive category", seg("wellness", CategoryHealth, Rules{Keywords: []string{"yoga"}}), true, "category health"},
		{"sensitive category, harmless name", seg("lifestyle.x", CategoryReligion, Rules{}), true, "religion"},
		{"wellness with therapy", seg("wellness", CategoryGeneral, Rules{Keywords: []string{"relax", "therapy"}}), true, `"therapy"`},
		{"wellness with депрессия", seg("wellness", CategoryGeneral, Rules{Keywords: []string{"депрессия"}}), true, "депрессия"},
		{"inflected Russian", seg("wellness", CategoryGeneral, Rules{Keywords: []string{"лечение депрессии"}}), true, "health"},
		{"sensitive name", Segment{ID: "w", Name: "Church goers", Category: CategoryGeneral}, true, "name"},
		{"sensitive id", seg("lgbt.travel", CategoryTravel, Rules{}), true, "id"},
		{"sensitive URL", seg("x", CategoryGeneral, Rules{URLs: []string{"*/uslugi/psiholog"}}), true, "URL pattern"},
		{"sensitive page category", seg("x", CategoryGeneral, Rules{Categories: []string{"Health & Fitness"}}), true, "page category"},
		{"stem reaching a sensitive word", seg("x", CategoryGeneral, Rules{Keywords: []string{"thera*"}}), true, "also matches"},
		{"stem reaching a Russian one", seg("x", CategoryGeneral, Rules{Keywords: []string{"псих*"}}), true, "also matches"},
		// Compounds, transliterations and punycode are the guard's too.
		{"compound name", Segment{ID: "meetups", Name: "gaydating", Category: CategoryGeneral}, true, `name "gaydating"`},
		{"compound id", seg("gaydating", CategoryGeneral, Rules{}), true, "id"},
		{"compound host", seg("x", CategoryGeneral, Rules{URLs: []string{"hivtest.example"}}), true, "URL pattern"},
		{"transliterated keyword", seg("x", CategoryGeneral, Rules{Keywords: []string{"psikhiatr"}}), true, "keyword"},
		{"punycode host", seg("x", CategoryGeneral, Rules{URLs: []string{"xn--b1am9b.xn--p1ai"}}), true, "URL pattern"},
		{"unknown category", seg("x", "cooking", Rules{}), false, "not one of"},
		{"bad id", seg("Bad ID", CategoryGeneral, Rules{}), false, "id must"},
		{"no name", Segment{ID: "x", Category: CategoryGeneral}, false, "name"},
		{"short stem", seg("x", CategoryGeneral, Rules{Keywords: []string{"ab*"}}), false, "stem"},
		{"star inside", seg("x", CategoryGeneral, Rules{Keywords: []string{"a*b"}}), false, "only ends"},
		{"bad URL", seg("x", CategoryGeneral, Rules{URLs: []string{"*/a*b"}}), false, "URL pattern"},
		{"URL matching everything", seg("x", CategoryGeneral, Rules{URLs: []string{"*/*"}}), false, "every URL"},
		{"bad host", seg("x", CategoryGeneral, Rules{URLs: []string{"ex ample.com/a"}}), false, "host"},
		{"bad lang", seg("x", CategoryLanguage, Rules{Langs: []string{"RU"}}), false, "language"},
		{"bad weight", Segment{ID: "x", Name: "x", Category: CategoryGeneral, Weight: 11}, false, "weight"},
		{"missing parent", Segment{ID: "x", Name: "x", Category: CategoryGeneral, Parent: "nope"}, false, "parent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(File{Segments: []Segment{ok, tc.s}})
			var se *SegmentError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SegmentError", err)
			}
			if want := tc.s.ID; want != "" && idRE.MatchString(want) && se.Segment != want {
				t.Errorf("names segment %q, want %q", se.Segment, want)
			}
			if errors.Is(err, ErrSensitive) != tc.sensitive || errors.Is(err, ErrInvalidTaxonomy) == tc.sensitive {
				t.Errorf("sensitive = %v, want %v: %v", errors.Is(err, ErrSensitive), tc.sensitive, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("%v does not say %q", err, tc.reason)
			}
		})
	}
}

func TestTaxonomyStructure(t *testing.T) {
	for name, f := range map[string]File{
		"empty":     {},
		"duplicate": {Segments: []Segment{seg("a", CategoryGeneral, Rules{}), seg("a", CategoryGeneral, Rules{})}},
		"cycle": {Segments: []Segment{
			{ID: "a", Name: "a", Parent: "b", Category: CategoryGeneral},
			{ID: "b", Name: "b", Parent: "a", Category: CategoryGeneral},
		}},
		"self parent": {Segments: []Segment{{ID: "a", Name: "a", Parent: "a", Category: CategoryGeneral}}},
	} {
		if _, err := New(f); !errors.Is(err, ErrInvalidTaxonomy) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, in := range map[string]string{
		"unknown field": `{"segments":[{"id":"a","name":"a","category":"general","colour":"red"}]}`,
		"two values":    `{"segments":[]} {}`,
		"not JSON":      `segments`,
		"too large":     `{"version":"` + strings.Repeat("x", MaxTaxonomySize) + `"}`,
	} {
		if _, err := Load(strings.NewReader(in)); !errors.Is(err, ErrInvalidTaxonomy) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTaxonomyRoundTrip(t *testing.T) {
	b, err := json.Marshal(Default().File())
	if err != nil {
		t.Fatal(err)
	}
	tax, err := Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if tax.Len() != Default().Len() || tax.Version() != Default().Version() {
		t.Errorf("round trip lost segments")
	}
}

func TestLive(t *testing.T) {
	l := NewLive(nil)
	if l.Load() != Default() {
		t.Fatal("NewLive(nil) does not hold the default")
	}
	small, err := New(File{Segments: []Segment{seg("a", CategoryGeneral, Rules{Keywords: []string{"alpha"}})}})
	if err != nil {
		t.Fatal(err)
	}
	l.Store(small)
	l.Store(nil)
	if l.Load() != small {
		t.Error("Store did not swap")
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(defaultTaxonomy)
	f.Add([]byte(`{"segments":[{"id":"wellness","name":"Wellness","category":"general","rules":{"keywords":["therapy","депрессия"]}}]}`))
	f.Add([]byte(`{"segments":[{"id":"a","name":"A","category":"health"}]}`))
	f.Add([]byte(`{"segments":[{"id":"a","name":"A","category":"home","rules":{"urls":["*/x","ex.com/a/b/*","/c"],"langs":["ru"],"categories":["Home Repair"]}}]}`))
	f.Add([]byte(`{"segments":[{"id":"a","name":"A","parent":"b","category":"home"},{"id":"b","name":"B","parent":"a","category":"home"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tax, err := Load(bytes.NewReader(b))
		if err != nil {
			var se *SegmentError
			if errors.As(err, &se) && se.Segment == "" {
				t.Fatalf("a segment error names no segment: %v", err)
			}
			return
		}
		// Whatever loads holds nothing sensitive.
		for _, s := range tax.File().Segments {
			if s.Category.Sensitive() || !s.Category.Valid() {
				t.Fatalf("%s: category %s loaded", s.ID, s.Category)
			}
			for _, text := range append(append([]string{s.ID, s.Name}, s.Rules.Keywords...), s.Rules.Categories...) {
				if cat, bad := guard.Sensitive(text); bad {
					t.Fatalf("%s: %q (%s) loaded", s.ID, text, cat)
				}
			}
		}
	})
}

func TestSensitiveCategoriesAreTheGuards(t *testing.T) {
	var got []string
	for _, c := range SensitiveCategories() {
		got = append(got, string(c))
	}
	if want := guard.Categories(); !slices.Equal(got, want) {
		t.Errorf("SensitiveCategories() = %v, the guard's are %v", got, want)
	}
}
