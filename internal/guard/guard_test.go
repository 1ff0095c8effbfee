package guard

import (
	"slices"
	"strings"
	"testing"
)

// guardCases are texts with the verdict the guard owes them.
var guardCases = []struct {
	text string
	want string // category, "" when not sensitive
}{
	{"plumber near me", ""},
	{"", ""},
	{"therapy", "health"},
	{"THERAPIST in Berlin", "health"},
	{"Cognitive Behavioural Therapy", "health"},
	{"депрессия", "health"},
	{"ДЕПРЕССИИ лечение", "health"},
	{"лечение депрессии", "health"},
	{"психолог онлайн", "health"},
	{"детский психолог", "health"},
	{"мануальный терапевт", "health"},
	{"ремонт квартир", ""},
	{"сантехник", ""},
	{"https://example.com/uslugi/psiholog?city=msk", "health"},
	{"https://example.com/search?q=%D0%B4%D0%B5%D0%BF%D1%80%D0%B5%D1%81%D1%81%D0%B8%D1%8F", "health"},
	{"https://example.com/search?q=%25D0%25B4%25D0%25B5%25D0%25BF%25D1%2580%25D0%25B5%25D1%2581%25D1%2581%25D0%25B8%25D1%258F", "health"}, // double-encoded
	{"https://example.com/search?q=self+harm", "health"},
	{"self-harm", "health"},
	{"harm self", ""},
	{"mental math tricks", ""},
	{"mental health support", "health"},
	{"в зависимости от цены", ""},
	{"алкогольная зависимость", "health"},
	{"hospitality jobs", ""},
	{"hospital near me", "health"},
	{"church wedding", "religion"},
	{"венчание в храме", "religion"},
	{"библиотека", ""},
	{"библия", "religion"},
	{"gay bar", "sexual_orientation"},
	{"знакомства", "sexual_orientation"},
	{"trade union lawyer", "trade_union"},
	{"профсоюз", "trade_union"},
	{"dna test", "genetic_biometric"},
	{"criminal defense lawyer", "criminal_record"},
	{"адвокат по уголовным делам", "criminal_record"},
	{"судимость", "criminal_record"},
	{"bankruptcy lawyer", "personal_hardship"},
	{"займы до зарплаты", "personal_hardship"},
	{"развод", "personal_hardship"},
	{"разводка труб", ""},
	{"долгосрочная аренда", ""},
	{"election polls", "political_opinion"},
	{"выборы мэра", "political_opinion"},
	{"refugee help", "ethnic_origin"},
	{"кухня", ""},
	{"Ёлка", ""},
	// Disguises: accents, compatibility forms, invisible characters and
	// look-alike letters of another script.
	{"dépression", "health"},
	{"DÍABÈTES", "health"},
	{"ｄｅｐｒｅｓｓｉｏｎ", "health"},                // fullwidth
	{"𝐝𝐢𝐚𝐛𝐞𝐭𝐞𝐬 diet", "health"},             // mathematical bold
	{"dep\u200bression", "health"},          // zero-width space
	{"can\u00adcer", "health"},              // soft hyphen
	{"di\u0430betes", "health"},             // Cyrillic а
	{"\u0441ancer", "health"},               // Cyrillic с
	{"hiv", "health"},                       // the plain form
	{"д\u0065прессия", "health"},            // Latin e in a Russian word
	{"р\u0061к", "health"},                  // Latin a in "рак"
	{"самоубии\u0306ство", "health"},        // и and a combining breve: й
	{"diab\u03b5tes", "health"},             // Greek ε
	{"азартнist игры", "personal_hardship"}, // a stem with an ending of another script
	{"сaнтехник", ""},                       // a mixed word that is harmless either way
	{"café plumbing", ""},
	{"d1abetes", "health"},                // digits for letters
	{"canc3r", "health"},                  //
	{"алкогольная 3ависимость", "health"}, // 3 for з
	{"mp3 player repair", ""},             // a word of letters and digits that hides nothing
	{"covid19 test", "health"},
	// Host labels and URLs: labels are words, escapes and + are decoded,
	// punycode labels too.
	{"https://www.hiv.example", "health"},
	{"https://mosque.example/", "religion"},
	{"https://xn--b1am9b.xn--p1ai/", "health"},                                  // вич.рф
	{"https://xn--e1aat0ax6a.xn--p1ai/", "religion"},                            // мечеть.рф
	{"HTTPS://XN--D1ACAM7AGIA1K.XN--P1AI", "health"},                            // депрессия.рф
	{"https://xn--c1aem.com/", "sexual_orientation"},                            // гей.com
	{"https://example.com/go?u=https%3A%2F%2Fxn--b1am9b.xn--p1ai%2F", "health"}, // escaped, then punycode
	{"https://xn--80akjimbyk2a.xn--p1ai/", ""},                                  // сантехник.рф
	// Compounds.
	{"hivtest.example", "health"},
	{"https://gaydating.example/", "sexual_orientation"},
	{"hivtest", "health"},
	{"gaydating", "sexual_orientation"},
	{"depressionhelp", "health"},
	{"helpdepression", "health"},
	{"вичтест", "health"},
	{"xn--b1agi1bdc5a.xn--p1ai", "health"}, // вичтест.рф
	{"помощьдепрессия", "health"},
	{"outpatient", "health"},
	{"mychurch", "religion"},
	{"antigay", "sexual_orientation"},
	{"drugstore", "health"},
	{"therapist", "health"}, // therap* starts it
	// Latin transliterations of the Russian terms.
	{"depressiya", "health"},
	{"vich", "health"},
	{"narkomaniya", "health"},
	{"psikhiatr", "health"},
	{"psihiatr", "health"},
	{"psixiatr", "health"},
	{"bankrotstvo", "personal_hardship"},
	{"razvod", "personal_hardship"},
	{"mechet", "religion"},
	{"https://example.ru/uslugi/mechet-moskva", "religion"},
	{"tsygane", "ethnic_origin"},
	{"cygane", "ethnic_origin"},
	{"yevrei", "religion"},
	{"khram", "religion"},
	{"hram", "religion"},
	{"vybory", "political_opinion"},
	{"vichtest", "health"},
}

func TestGuard(t *testing.T) {
	for _, tc := range guardCases {
		got, ok := Sensitive(tc.text)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("Sensitive(%q) = %q, %v; want %q", tc.text, got, ok, tc.want)
		}
	}
}

// TestGuardCompoundsMustNotMatch holds the false positives of compound
// matching low: a short term inside a word, or glued to letters that are
// no partner, is not found.
func TestGuardCompoundsMustNotMatch(t *testing.T) {
	for _, text := range []string{
		"archive", "chivalry", "shiva", "hive", "hives", "beehive", "jewelry", "jewellery", "section", "sections",
		"culture", "cultural", "agriculture", "difficult", "insect", "dissect", "template", "hospitality",
		"housemaids", "bridesmaids", "updating", "validating", "accommodating", "hairspray", "aromatherapy",
		"essex", "sussex", "middlesex", "history", "story", "factory", "spider", "rakuten", "pashmina",
		"operation", "scunthorpe", "classic", "analysis",
		"гейзер", "геймер", "ракета", "раковина", "секция", "разводка",
		// Russian services in Latin letters.
		"santehnik", "stroitelstvo", "remont", "uborka", "kvartira", "perevozki", "repetitor", "fotograf",
		"svadba", "krasota", "manikyur", "yurist", "buhgalter", "perevodchik", "trener", "ekskursii",
	} {
		if cat, ok := Sensitive(text); ok {
			t.Errorf("%q flagged %s", text, cat)
		}
	}
}

func TestTransliterations(t *testing.T) {
	for _, tc := range []struct {
		term string
		want []string
	}{
		{"психиатр*", []string{"psikhiatr*", "psihiatr*", "psixiatr*"}},
		{"цыган*", []string{"tsygan*", "tsigan*", "cygan*", "cigan*", "tzygan*", "tzigan*", "czygan*", "czigan*"}},
		{"еврей*", []string{"evrey*", "evrei*", "evrej*", "yevrey*", "yevrei*", "yevrej*"}},
		{"ёж", []string{"ezh", "ej", "yozh", "yoj"}},
		{"вич", []string{"vich"}},
		{"мечеть", []string{"mechet"}},
		{"пасх*", []string{"paskh*"}}, // pash*, pasx*: Latin stems too short
		{"опек*", []string{}},
	} {
		if got := transliterations(tc.term); !slices.Equal(got, tc.want) {
			t.Errorf("transliterations(%q) = %q, want %q", tc.term, got, tc.want)
		}
	}
}

func TestGuardWordBoundaries(t *testing.T) {
	// A short term inside a longer word does not match (compounds aside);
	// a stem does at a word start.
	for _, text := range []string{"therapy", "a therapy", "therapy."} {
		if _, ok := Sensitive(text); !ok {
			t.Errorf("%q not found", text)
		}
	}
	for _, text := range []string{"aromatherap", "xtherapy", "unprayable"} {
		if cat, ok := Sensitive(text); ok {
			t.Errorf("%q flagged %s", text, cat)
		}
	}
}

func TestNew(t *testing.T) {
	for _, bad := range []string{
		"",
		"therapy",             // no section
		"[cooking]\nsoup",     // not a sensitive category
		"[health]\nab*",       // stem too short
		"[health]\na b c d e", // too many words
		"[health]\nthe*rapy",  // * inside a word
		"[health]\n!!!",       // no letters
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
	g, err := New("# c\n[health]\nfoo bar*\n[religion]\nbaz\n")
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := g.Sensitive("Foo Barley"); !ok || c != "health" {
		t.Errorf("phrase with stem: %q %v", c, ok)
	}
	if _, ok := g.Sensitive("bar foo"); ok {
		t.Errorf("phrase out of order matched")
	}
	if c, ok := g.Sensitive("x baz y"); !ok || c != "religion" {
		t.Errorf("second section: %q %v", c, ok)
	}
}

func TestLexiconCoversEveryCategory(t *testing.T) {
	seen := map[string]bool{}
	n := 0
	Default().Terms(func(category, line string, _ []Word) {
		seen[category] = true
		n++
		// Every term matches its own text.
		if _, ok := Sensitive(strings.ReplaceAll(line, "*", "")); !ok {
			t.Errorf("term %q does not match itself", line)
		}
	})
	for _, c := range Categories() {
		if !seen[c] {
			t.Errorf("the lexicon has no terms for %s", c)
		}
	}
	if n < 300 {
		t.Errorf("lexicon has %d terms", n)
	}
}

func TestCategories(t *testing.T) {
	want := []string{"criminal_record", "ethnic_origin", "genetic_biometric", "health", "personal_hardship",
		"political_opinion", "religion", "sexual_orientation", "trade_union"}
	if got := Categories(); !slices.Equal(got, want) {
		t.Errorf("Categories() = %v, want %v", got, want)
	}
	if IsCategory("plumbing") || !IsCategory("health") {
		t.Error("IsCategory")
	}
}
