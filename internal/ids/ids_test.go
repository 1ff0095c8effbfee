package ids

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"c1": true, "camp_2025-Q1": true, strings.Repeat("a", MaxLen): true,
		"": false, strings.Repeat("a", MaxLen+1): false, "a.b": false, "a*": false, "a>b": false,
		"a b": false, "a\x00": false, "ä": false, "a/b": false, "a~b": false,
	} {
		if Valid(s) != want || Valid([]byte(s)) != want {
			t.Errorf("Valid(%q) = %v, want %v", s, !want, want)
		}
	}
}

func TestValidVisitor(t *testing.T) {
	for v, want := range map[string]bool{
		"v1": true, "AbCdEfGhIjKlMnOpQrSt-_": true, "pub.first=party/id": true, strings.Repeat("v", MaxVisitorLen): true,
		"": false, strings.Repeat("v", MaxVisitorLen+1): false, ".v": false, "v.": false, "a..b": false,
		"v*": false, "v>": false, "v 1": false, "v\n": false, "v+1": false, "v~": false,
	} {
		if ValidVisitor(v) != want || ValidVisitor([]byte(v)) != want {
			t.Errorf("ValidVisitor(%q) = %v, want %v", v, !want, want)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	b := []byte("AbCdEfGhIjKlMnOpQrSt-_")
	if n := testing.AllocsPerRun(100, func() { Valid(b); ValidVisitor(b) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// FuzzValid: an id that passes is a safe subject token and path segment.
func FuzzValid(f *testing.F) {
	for _, s := range []string{"c1", "a.b", "*", ">", "a b", "..", "v/1=", strings.Repeat("x", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Valid(s) && (strings.ContainsAny(s, "*>. /\x00") || len(s) > MaxLen) {
			t.Fatalf("Valid(%q)", s)
		}
		if ValidVisitor(s) && (strings.ContainsAny(s, "*> \x00") || strings.Contains(s, "..") || len(s) > MaxVisitorLen) {
			t.Fatalf("ValidVisitor(%q)", s)
		}
		if Valid(s) && !ValidVisitor(s) {
			t.Fatalf("record id %q is no visitor id", s)
		}
	})
}
