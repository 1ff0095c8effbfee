package privacy

import (
	"testing"
	"unicode/utf8"
)

func TestFindContact(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // the span found, "" for none
		kind Kind
	}{
		{"write to john.doe@example.com today", "john.doe@example.com", KindEmail},
		{"john+tag@mail.example.co.uk", "john+tag@mail.example.co.uk", KindEmail},
		{"JOHN@EXAMPLE.ORG", "JOHN@EXAMPLE.ORG", KindEmail},
		{"иван@почта.рф", "иван@почта.рф", KindEmail},
		{"john＠example.com", "john＠example.com", KindEmail},
		{"john (at) example (dot) com", "john (at) example (dot) com", KindEmail},
		{"john[at]example.com", "john[at]example.com", KindEmail},
		{"john {AT} example [dot] org", "john {AT} example [dot] org", KindEmail},
		{"user@localhost", "user@localhost", KindEmail},
		{"/contact/jane_doe@corp.example/", "jane_doe@corp.example", KindEmail},
		{"@handle on social", "", KindNone},
		{"meet me (at) noon", "", KindNone}, // spelled at without a dotted domain
		{"a@", "", KindNone},

		{"call +7 (495) 123-45-67 now", "+7 (495) 123-45-67", KindPhone},
		{"+44 20 7946 0958", "+44 20 7946 0958", KindPhone},
		{"+1-202-555-0173", "+1-202-555-0173", KindPhone},
		{"(202) 555-0173", "202) 555-0173", KindPhone},
		{"8 916 123 45 67", "8 916 123 45 67", KindPhone},
		{"89161234567", "89161234567", KindPhone},
		{"+49.30.1234567", "+49.30.1234567", KindPhone},
		{"555-0173", "555-0173", KindPhone}, // a local number
		{"55-0173", "", KindNone},           // six digits
		{"tel: 030/1234567", "030/1234567", KindPhone},
		{"+33\u00a06\u00a012\u00a034\u00a056\u00a078", "+33\u00a06\u00a012\u00a034\u00a056\u00a078", KindPhone},
		{"+7\u2011916\u2011123\u20114567", "+7\u2011916\u2011123\u20114567", KindPhone},
		{"＋７ ９１６ １２３ ４５ ６７", "７ ９１６ １２３ ４５ ６７", KindPhone},
		{"page 2 of 10, 2024", "", KindNone},
		{"/blog/2024/05/17/title", "", KindNone},
		{"2026-12-05T17:20:00Z", "", KindNone},
		{"on 17.05.2024", "", KindNone},
		{"2024-05-17-1234", "2024-05-17-1234", KindPhone},
		{"495-12-34", "495-12-34", KindPhone}, // a local number
		{"+7 495", "", KindNone},

		{"from 203.0.113.77 today", "203.0.113.77", KindIP},
		{"10.0.0.1.", "10.0.0.1", KindIP},
		{"host 2001:db8:85a3::8a2e:370:7334 seen", "2001:db8:85a3::8a2e:370:7334", KindIP},
		{"[2001:db8::1]:443", "2001:db8::1", KindIP},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.1", KindIP},
		{"fe80::1 and 1:2:3:4:5:6:7::", "fe80::1", KindIP},
		{"std::vector", "", KindNone},
		{"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8", KindIP},
		{"256.1.1.1", "", KindNone},
		{"12:30:45", "", KindNone},
		{"version 1.2.3", "", KindNone},
		{"", "", KindNone},
	} {
		s, e, k := FindContact([]byte(tt.in))
		got := tt.in[s:e]
		if k != tt.kind || got != tt.want {
			t.Errorf("FindContact(%q) = %q %s, want %q %s", tt.in, got, k, tt.want, tt.kind)
		}
	}
}

func TestAppendWithoutContacts(t *testing.T) {
	var tmp [2][]byte
	for _, tt := range []struct{ in, want string }{
		{"mail john@example.com or call +7 495 123-45-67", "mail  or call "},
		{"no contact here", "no contact here"},
		// Cutting the email joins 123 and 4567 into a seven-digit run.
		{"123a@b.example4567", ""},
		{"ip 198.51.100.23, mail x@y.example", "ip , mail "},
	} {
		out, ok := AppendWithoutContacts([]byte(">"), []byte(tt.in), &tmp)
		if !ok || string(out) != ">"+tt.want {
			t.Errorf("AppendWithoutContacts(%q) = %q %v, want %q", tt.in, out, ok, tt.want)
		}
	}
}

func FuzzFindContact(f *testing.F) {
	for _, s := range []string{
		"john.doe@example.com", "john (at) example (dot) com", "+7 (495) 123-45-67", "＋７ ９１６",
		"2001:db8::1", "203.0.113.77", "a@b", "%40", "8 916 123 45 67", "::", "1.2.3.4.5.6",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		st, e, k := FindContact(b)
		if k != KindNone && (st < 0 || e > len(b) || st >= e) {
			t.Fatalf("span [%d,%d) of %d bytes", st, e, len(b))
		}
		var tmp [2][]byte
		out, ok := AppendWithoutContacts(nil, b, &tmp)
		if !ok {
			return
		}
		if _, has := HasContact(out); has {
			t.Fatalf("contact left in %q (from %q)", out, s)
		}
		if utf8.ValidString(s) && len(out) > len(s) {
			t.Fatalf("output grew: %q", out)
		}
	})
}
