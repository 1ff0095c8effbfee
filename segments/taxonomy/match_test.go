package taxonomy

import (
	"slices"
	"testing"

	"github.com/adsyn/adsyn/internal/event"
)

func TestMatch(t *testing.T) {
	tax := Default()
	for _, tc := range []struct {
		name      string
		e         event.Event
		want      []string // segment ids, sorted
		rule      string   // rule of the first wanted segment, when set
		sensitive string
	}{
		{"search, Russian stem", event.Event{Kind: event.KindSearch, Query: "Срочно нужен САНТЕХНИКУ"}, []string{"home", "home.plumbing"}, "keyword:сантехник*", ""},
		{"search, English phrase", event.Event{Kind: event.KindSearch, Query: "best wedding planner berlin"}, []string{"events", "events.wedding"}, "", ""},
		{"URL slug, encoded Cyrillic", event.Event{Kind: event.KindPageview, URL: "https://m.example/uslugi/santehnika/moskva"}, []string{"home", "home.plumbing"}, "url:*/uslugi/santehnika", ""},
		{"URL needs whole segments", event.Event{Kind: event.KindPageview, URL: "https://m.example/uslugi/santehnikax"}, nil, "", ""},
		{"page category", event.Event{Kind: event.KindPageview, Categories: []string{"Tiling"}}, []string{"home", "home.tiling"}, "", ""},
		{"language", event.Event{Kind: event.KindPageview, Lang: "de-AT"}, []string{"lang.de"}, "lang:de", ""},
		{"unknown language", event.Event{Kind: event.KindPageview, Lang: "x1"}, nil, "", ""},
		{"impressions contribute nothing", event.Event{Kind: event.KindImpression, Query: "plumber", Lang: "ru"}, nil, "", ""},
		{"sensitive query", event.Event{Kind: event.KindSearch, Query: "сантехник и психолог", Lang: "ru"}, nil, "", "health"},
		{"sensitive URL", event.Event{Kind: event.KindPageview, URL: "https://m.example/services/plumbing?q=%D0%B4%D0%B5%D0%BF%D1%80%D0%B5%D1%81%D1%81%D0%B8%D1%8F"}, nil, "", "health"},
		{"sensitive host", event.Event{Kind: event.KindPageview, URL: "https://church-wedding.example/services/plumbing"}, nil, "", "religion"},
		{"sensitive category", event.Event{Kind: event.KindPageview, Categories: []string{"plumbing", "Gay Life"}}, nil, "", "sexual_orientation"},
		{"sensitive impression page", event.Event{Kind: event.KindImpression, URL: "https://news.example/divorce-advice"}, nil, "", "personal_hardship"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, sens := tax.Match(nil, &tc.e)
			if sens != tc.sensitive {
				t.Errorf("sensitive = %q, want %q", sens, tc.sensitive)
			}
			var ids []string
			for _, c := range got {
				ids = append(ids, c.Segment)
				if !tax.HasRule(c.Rule) {
					t.Errorf("rule %q is not a taxonomy rule", c.Rule)
				}
			}
			slices.Sort(ids)
			if !slices.Equal(ids, tc.want) {
				t.Errorf("segments %v, want %v", ids, tc.want)
			}
			if tc.rule != "" {
				for _, c := range got {
					if c.Segment == tc.want[len(tc.want)-1] && c.Rule != tc.rule {
						t.Errorf("rule %q, want %q", c.Rule, tc.rule)
					}
				}
			}
		})
	}
}

func TestMatchParentShare(t *testing.T) {
	got, _ := Default().Match(nil, &event.Event{Kind: event.KindSearch, Query: "plumber"})
	w := map[string]float64{}
	for _, c := range got {
		w[c.Segment] = c.Weight
	}
	if w["home.plumbing"] != 1 || w["home"] != 0.5 {
		t.Errorf("weights %v", w)
	}
}

func TestSplitURL(t *testing.T) {
	for _, tc := range []struct{ in, host, path string }{
		{"https://User@Example.COM:8443/a/b?c#d", "Example.COM", "/a/b"},
		{"//example.com/x", "example.com", "/x"},
		{"/just/a/path?q", "", "/just/a/path"},
		{"example.com/p", "example.com", "/p"},
		{"relative/path", "", "relative/path"},
		{"http://[::1]:80/v6", "[::1]", "/v6"},
	} {
		h, p := splitURL(tc.in)
		if h != tc.host || p != tc.path {
			t.Errorf("splitURL(%q) = %q %q, want %q %q", tc.in, h, p, tc.host, tc.path)
		}
	}
}

func TestURLPatterns(t *testing.T) {
	f, err := New(File{Segments: []Segment{
		seg("a", CategoryGeneral, Rules{URLs: []string{"shop.example"}}),
		seg("b", CategoryGeneral, Rules{URLs: []string{"*.shop.example/Услуги/Ремонт"}}),
		seg("c", CategoryGeneral, Rules{URLs: []string{"/top/level/*"}}),
		seg("d", CategoryGeneral, Rules{URLs: []string{"*/deep"}}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url  string
		want []string
	}{
		{"https://shop.example/", []string{"a"}},
		{"https://www.shop.example/%D1%83%D1%81%D0%BB%D1%83%D0%B3%D0%B8/%D1%80%D0%B5%D0%BC%D0%BE%D0%BD%D1%82/x", []string{"a", "b"}},
		{"https://notshop.example/услуги/ремонт", nil},
		{"https://other.example/услуги/ремонт", nil},
		{"https://x.example/top/level/more", []string{"c"}},
		{"https://x.example/not/top/level", nil},
		{"https://x.example/a/b/DEEP/c", []string{"d"}},
	} {
		got, _ := f.Match(nil, &event.Event{Kind: event.KindPageview, URL: tc.url})
		var ids []string
		for _, c := range got {
			ids = append(ids, c.Segment)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, tc.want) {
			t.Errorf("%s: %v, want %v", tc.url, ids, tc.want)
		}
	}
}
