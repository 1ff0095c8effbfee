package guard

import (
	"testing"
	"unicode/utf8"
)

// TestDecodePunycode decodes the samples of RFC 3492 section 7.1 (each also
// checked against golang.org/x/net/idna's encoder).
func TestDecodePunycode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"b1abfaaepdrnnbgefbaDotcwatmq2g4l", "почемужеонинеговорятпорусски"},                          // (I) Russian
		{"ihqwcrb4cv8a8dqg056pqjye", "他们为什么不说中文"},                                                     // (B) Chinese, simplified
		{"Proprostnemluvesky-uyb24dma41a", "Pročprostěnemluvíčesky"},                                  // (D) Czech
		{"PorqunopuedensimplementehablarenEspaol-fmd56a", "PorquénopuedensimplementehablarenEspañol"}, // (J) Spanish
		{"TisaohkhngthchnitingVit-kjcr8268qyxafd2f1b9g", "TạisaohọkhôngthểchỉnóitiếngViệt"},           // (K) Vietnamese
		{"-> $1.00 <--", "-> $1.00 <-"}, // (S) ASCII only
		{"b1am9b", "вич"},
	} {
		got, ok := decodePunycode(nil, []byte(tc.in))
		if !ok || string(got) != tc.want {
			t.Errorf("decodePunycode(%q) = %q, %v; want %q", tc.in, string(got), ok, tc.want)
		}
	}
	for _, bad := range []string{"b1am9", "99999999999999", "ü-abc", "a!b", "zzzzzzzzzzzzzzzzzz"} {
		if got, ok := decodePunycode(nil, []byte(bad)); ok {
			t.Errorf("decodePunycode(%q) = %q, want a failure", bad, string(got))
		}
	}
}

func TestDecodedLabels(t *testing.T) {
	var runes [maxLabel]rune
	for _, tc := range []struct{ in, want string }{
		{"https://xn--b1am9b.xn--p1ai/path", "https://вич.рф/path"},
		{"HTTPS://XN--C1AEM.COM", "HTTPS://гей.COM"},
		{"xn----8sbhtiicpdcbcg2a5d.xn--p1ai", "психолог-онлайн.рф"},
		{"a-xn--b1am9b.example", "a-xn--b1am9b.example"}, // not a label start
		{"xn--!!.example", "xn--!!.example"},             // not punycode: kept
		{"plain.example/xn-", "plain.example/xn-"},
	} {
		if got := string(appendDecodedLabels(nil, []byte(tc.in), &runes)); got != tc.want {
			t.Errorf("appendDecodedLabels(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzDecodePunycode(f *testing.F) {
	for _, s := range []string{"b1abfaaepdrnnbgefbaDotcwatmq2g4l", "ihqwcrb4cv8a8dqg056pqjye", "Proprostnemluvesky-uyb24dma41a", "-> $1.00 <--", "b1am9b", "", "-", "99999999999999", "a-b-c-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var runes [maxLabel]rune
		if len(s) > maxLabel {
			s = s[:maxLabel]
		}
		got, ok := decodePunycode(runes[:0], []byte(s))
		if !ok {
			if len(got) != 0 {
				t.Fatalf("%q: failed with output %q", s, string(got))
			}
			return
		}
		if len(got) > len(s) {
			t.Fatalf("%q: %d code points from %d bytes", s, len(got), len(s))
		}
		if len(got) > 0 && &got[0] != &runes[0] {
			t.Fatalf("%q: the output outgrew its buffer", s)
		}
		for _, r := range got {
			if !utf8.ValidRune(r) {
				t.Fatalf("%q: invalid code point %U", s, r)
			}
		}
		// Labels around it decode alike.
		in := "x.xn--" + s + ".y"
		if s != "" && isLabel(s) {
			want := "x." + string(got) + ".y"
			if out := string(appendDecodedLabels(nil, []byte(in), &runes)); out != want {
				t.Fatalf("%q in a host: %q, want %q", s, out, want)
			}
		}
	})
}

func isLabel(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isLabelByte(s[i]) {
			return false
		}
	}
	return true
}
