package device

import (
	"slices"
	"strings"
	"testing"
)

func TestPrimaryLanguage(t *testing.T) {
	tests := []struct{ header, want string }{
		{"ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"},
		{"en;q=0.1, de", "de"},
		{"en-US,en;q=0.9", "en"},
		{"fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr"},
		{"de;q=0.5, fr;q=0.5", "de"}, // the first among equals
		{"EN-gb", "en"},
		{"zh-Hant-TW,zh;q=0.9", "zh"},
		{"pt_BR", "pt"},
		{"fil-PH,en;q=0.8", "fil"},
		{"yue-Hant-HK", "yue"},
		{"iw-IL", "he"}, // withdrawn code, still sent
		{"*", ""},
		{"", ""},
		{"xx-YY", ""},
		{"xx, es;q=0.3", "es"}, // unknown entries are skipped
		{"en;q=0, es;q=0.001", "es"},
		{"en;q=0", ""},
		{"en;q=1.5, it;q=0.2", "it"}, // malformed q drops the entry
		{"en;q=abc, it;q=0.2", "it"},
		{"en ; q=0.2 , ja ; q=0.3", "ja"},
		{"en;Q=0.2, ja;q=0.3", "ja"},
		{"en;q=0.2;level=1, ja", "ja"},
		{"en;q=1.000, ja", "en"},
		{"english, ja;q=0.1", "ja"},
		{"e, ja;q=0.1", "ja"},
		{"x-klingon, i-navajo, ja;q=0.1", "ja"},
		{",,, ;;, nl", "nl"},
		{"\xff\xfe, ko", "ko"},
	}
	for _, tt := range tests {
		if got := PrimaryLanguage([]byte(tt.header)); got != tt.want {
			t.Errorf("PrimaryLanguage(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

func TestPrimaryLanguageBounded(t *testing.T) {
	// Entries past the first maxLangEntries are not read.
	h := strings.Repeat("xx,", maxLangEntries) + "de"
	if got := PrimaryLanguage([]byte(h)); got != "" {
		t.Errorf("entry %d read: %q", maxLangEntries+1, got)
	}
}

func TestLanguages(t *testing.T) {
	tests := []struct {
		header string
		want   []string
	}{
		{"ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", []string{"ru", "en"}},
		{"en;q=0.1, de", []string{"de", "en"}},
		{"fr;q=0.5, de;q=0.5, it;q=0.9", []string{"it", "fr", "de"}},
		{"*, en;q=0", nil},
		{"", nil},
		{"a1,en-US,en-GB;q=0.9,es;q=0.8,pt;q=0.7,fr;q=0.6,de;q=0.5,it;q=0.4,nl;q=0.3,sv;q=0.2,pl;q=0.1",
			[]string{"en", "es", "pt", "fr", "de", "it", "nl", "sv"}},
	}
	for _, tt := range tests {
		got := Languages([]byte(tt.header), nil)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Languages(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
	// It appends.
	got := Languages([]byte("de, en"), []string{"x"})
	if !slices.Equal(got, []string{"x", "de", "en"}) {
		t.Errorf("append: got %q", got)
	}
}

func TestLanguageTable(t *testing.T) {
	codes := strings.Fields(iso639_1)
	if len(codes) != 183 {
		t.Errorf("iso639_1 holds %d codes, want 183", len(codes))
	}
	for _, c := range codes {
		if got := PrimaryLanguage([]byte(strings.ToUpper(c) + "-XX")); got != c {
			t.Errorf("%s: got %q", c, got)
		}
	}
	for _, c := range strings.Fields(iso639_3) {
		if got := PrimaryLanguage([]byte(c)); got != c {
			t.Errorf("%s: got %q", c, got)
		}
	}
}

func TestQValue(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"1", 1000}, {"1.", 1000}, {"1.0", 1000}, {"1.000", 1000}, {"0", 0}, {"0.", 0},
		{"0.8", 800}, {"0.85", 850}, {"0.853", 853}, {"0.8539", 853},
		{"", -1}, {"2", -1}, {"1.1", -1}, {".5", -1}, {"0,5", -1}, {"0.5x", -1}, {"-0", -1},
	}
	for _, tt := range tests {
		if got := qvalue([]byte(tt.in)); got != tt.want {
			t.Errorf("qvalue(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
