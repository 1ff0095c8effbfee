package guard

import (
	"net/url"
	"strings"
	"testing"
)

func FuzzSensitive(f *testing.F) {
	for _, s := range []string{
		"", "plumber near me", "депрессия", "ДЕПРЕССИИ лечение", "self-harm", "https://x.example/uslugi/psiholog?q=1",
		"%D0%B4%D0%B5%D0%BF%D1%80%D0%B5%D1%81%D1%81%D0%B8%D1%8F", "%25D0%25B4", "trade union", "ёлка", "\xff\xfe", "a%", "%%41",
		"diabetes clinic", "Church Wedding", "gay bar", "payday loans",
		"hivtest.example", "https://xn--b1am9b.xn--p1ai/", "psikhiatr", "helpdepression", "вичтест", "archive",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cat, ok := Sensitive(text)
		if ok != (cat != "") {
			t.Fatalf("%q: %q %v", text, cat, ok)
		}
		if ok && !IsCategory(cat) {
			t.Fatalf("%q: %q is not a sensitive category", text, cat)
		}
		// Words around it change nothing.
		if c2, _ := Sensitive("x " + text + " y"); c2 != cat {
			t.Fatalf("%q: %q alone, %q with words around", text, cat, c2)
		}
		if strings.Contains(text, "%") {
			return
		}
		// Neither does ASCII case or percent-encoding.
		if c2, _ := Sensitive(strings.ToUpper(text)); c2 != cat && isASCII(text) {
			t.Fatalf("%q: %q, upper-cased %q", text, cat, c2)
		}
		if c2, _ := Sensitive(url.QueryEscape(text)); c2 != cat {
			t.Fatalf("%q: %q, escaped %q", text, cat, c2)
		}
		// Nor does a disguise: fullwidth forms, zero-width spaces, a look-alike
		// of another script, a digit for a letter.
		if !ok || !isASCII(text) || hasACE([]byte(text)) {
			return // a disguised punycode label is no host name at all
		}
		for name, disguised := range map[string]string{"fullwidth": fullwidth(text), "zero-width": zeroWidth(text), "look-alike": lookAlike(text), "digit": digitFor(text)} {
			if _, ok := Sensitive(disguised); !ok {
				t.Fatalf("%q is %q, but not as %s %q", text, cat, name, disguised)
			}
		}
	})
}

// fullwidth writes printable ASCII in its fullwidth forms.
func fullwidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ':
			r = '\u3000'
		case r > ' ' && r < 0x7f:
			r += 0xfee0
		}
		b.WriteRune(r)
	}
	return b.String()
}

// zeroWidth puts a zero-width space after every character.
func zeroWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
		b.WriteString("\u200b")
	}
	return b.String()
}

// lookAlike writes the first a, e or o next to another letter in Cyrillic.
func lookAlike(s string) string {
	return replaceFirst(s, map[byte]string{'a': "а", 'e': "е", 'o': "о"})
}

// digitFor writes the first a, e, i or o next to another letter as a digit.
func digitFor(s string) string {
	return replaceFirst(s, map[byte]string{'a': "4", 'e': "3", 'i': "1", 'o': "0"})
}

// replaceFirst replaces the first byte of s that by has, in a word of
// letters with at least one other letter next to it.
func replaceFirst(s string, by map[byte]string) string {
	isLetter := func(i int) bool { return i >= 0 && i < len(s) && (s[i]|0x20 >= 'a' && s[i]|0x20 <= 'z') }
	for i := 0; i < len(s); i++ {
		if c := by[s[i]]; c != "" && (isLetter(i-1) || isLetter(i+1)) {
			return s[:i] + c + s[i+1:]
		}
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
