package phone

import (
	"regexp"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"+7 (495) 123-45-67", "+74951234567", true},
		{"+49 30 901820", "+4930901820", true},
		{"030/901820", "030901820", true},
		{"1.800.555.0100", "18005550100", true},
		{"112", "112", true},
		{"12", "", false},                // too few digits
		{"+1234567890123456", "", false}, // 16 digits: longer than E.164
		{"+7 495 12+3", "", false},       // a '+' after the start
		{"++7 495 123", "", false},
		{"tel:+74951234567", "", false},
		{"495 123 45 67 ext 2", "", false},
		{"", "", false},
		{strings.Repeat(" ", MaxLen) + "123", "", false},
	} {
		got, ok := Normalize(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Normalize(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"+7 (495) 123-45-67": "74951234567",
		"74951234567":        "74951234567",
		"tel: 8-800 / 55":    "880055",
		"none":               "",
	} {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
}

var normalized = regexp.MustCompile(`^\+?[0-9]{3,15}$`)

// FuzzNormalize: whatever the input, a number that passes is "+digits" or
// "digits" of 3 to 15 digits, normalising it again changes nothing, and its
// key is its digits, as Key finds them in the input.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+7 (495) 123-45-67", "030/901820", "1.800.555.0100", "+", "12", "+1 2 3", "٣٤٥٦", "+7\x00495"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := Normalize(s)
		if !ok {
			if n != "" {
				t.Fatalf("refused %q but returned %q", s, n)
			}
			return
		}
		if !normalized.MatchString(n) {
			t.Fatalf("Normalize(%q) = %q", s, n)
		}
		if again, ok := Normalize(n); !ok || again != n {
			t.Fatalf("Normalize(%q) = %q, %v: not idempotent", n, again, ok)
		}
		if k := Key(s); k != strings.TrimPrefix(n, "+") {
			t.Fatalf("Key(%q) = %q, Normalize gave %q", s, k, n)
		}
	})
}
