package consent

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// official is the example TC string from the TCF v2.2 specification.
const official = "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA"

const ourVendor = 42

var stamp = time.Date(2025, 6, 3, 10, 30, 0, 0, time.UTC)

// validTC is a v2.2-valid string giving ourVendor consent for purposes 1-4 and 7.
func validTC() *TCString {
	return &TCString{
		Version:           2,
		Created:           stamp,
		LastUpdated:       stamp.Add(90 * time.Second),
		CmpID:             7,
		CmpVersion:        3,
		ConsentScreen:     1,
		ConsentLanguage:   "EN",
		VendorListVersion: 120,
		TcfPolicyVersion:  5,
		IsServiceSpecific: true,
		PurposesConsent:   BitsOf(1, 2, 3, 4, 7),
		PublisherCC:       "FR",
		VendorConsents:    Vendors{MaxVendorID: 100, Ranges: RangesOf(ourVendor)},
	}
}

func mustEncode(t testing.TB, tc *TCString) string {
	t.Helper()
	s, err := Encode(tc)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return s
}

// craft writes validTC's header, then whatever body writes, as one core segment.
func craft(t testing.TB, body func(w *writer)) string {
	t.Helper()
	var w writer
	w.header(validTC())
	body(&w)
	if w.err != nil {
		t.Fatalf("craft: %v", w.err)
	}
	return w.text()
}

// pad adds base64 padding to every segment.
func pad(s string) string {
	segs := strings.Split(s, ".")
	for i, seg := range segs {
		segs[i] = seg + strings.Repeat("=", (4-len(seg)%4)%4)
	}
	return strings.Join(segs, ".")
}

func TestDecodeOfficialExample(t *testing.T) {
	tc, err := Decode(official)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Version", tc.Version, 2},
		{"CmpID", tc.CmpID, 880},
		{"ConsentLanguage", tc.ConsentLanguage, "EN"},
		{"VendorListVersion", tc.VendorListVersion, 48},
		{"TcfPolicyVersion", tc.TcfPolicyVersion, 2},
		{"PublisherCC", tc.PublisherCC, "DE"},
		{"PurposesConsent", tc.PurposesConsent, Bits(0)},
		{"PurposesLITransparency", tc.PurposesLITransparency, Bits(0)},
		{"VendorConsents", tc.VendorConsents.Ranges, []Range{{1, 4}}},
		{"VendorConsents.MaxVendorID", tc.VendorConsents.MaxVendorID, 4},
		{"has disclosed vendors", tc.DisclosedVendors != nil, true},
		{"has publisher purposes", tc.PublisherPurposes != nil, true},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if err := tc.Valid(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Valid() = %v, want ErrInvalid (policy version 2)", err)
	}
	for v := 1; v <= 5; v++ {
		if g := Grants([]byte(official), v); g != 0 {
			t.Errorf("Grants(official, %d) = %v, want nothing", v, g.Names())
		}
		if g := tc.Grants(v); g != 0 {
			t.Errorf("TCString.Grants(%d) = %v, want nothing", v, g.Names())
		}
	}
	if _, err := Decode(pad(official)); err != nil {
		t.Errorf("Decode(padded official): %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	tests := map[string]func(*TCString){
		"bitfield": func(*TCString) {},
		"range": func(tc *TCString) {
			tc.VendorConsents = Vendors{MaxVendorID: 900, IsRangeEncoding: true, Ranges: []Range{{1, 1}, {ourVendor, 50}, {700, 900}}}
		},
		"legitimate interests both forms": func(tc *TCString) {
			tc.PurposesLITransparency = BitsOf(2, 7, 9)
			tc.VendorLegitimateInterests = Vendors{MaxVendorID: 64, Ranges: []Range{{3, 9}, {64, 64}}}
			tc.VendorConsents = Vendors{MaxVendorID: 30000, IsRangeEncoding: true, Ranges: []Range{{2, 29000}}}
		},
		"empty vendor sections": func(tc *TCString) {
			tc.VendorConsents = Vendors{}
			tc.VendorLegitimateInterests = Vendors{IsRangeEncoding: true}
		},
		"restrictions": func(tc *TCString) {
			tc.PublisherRestrictions = []Restriction{
				{Purpose: 3, Type: NotAllowed, Vendors: []Range{{ourVendor, ourVendor}}},
				{Purpose: 7, Type: RequireConsent, Vendors: []Range{{1, 10}, {12, 65535}}},
				{Purpose: 2, Type: RequireLI},
				{Purpose: 10, Type: undefinedRestriction, Vendors: []Range{{5, 5}}},
			}
		},
		"every header field": func(tc *TCString) {
			tc.ConsentScreen = 63
			tc.CmpID, tc.CmpVersion, tc.VendorListVersion = 4095, 4095, 4095
			tc.TcfPolicyVersion = 63
			tc.UseNonStandardTexts = true
			tc.PurposeOneTreatment = true
			tc.SpecialFeatureOptIns = BitsOf(1, 2, 12)
			tc.PurposesConsent = BitsOf(1, 24)
			tc.ConsentLanguage, tc.PublisherCC = "ZZ", "AA"
		},
		"disclosed vendors and publisher purposes": func(tc *TCString) {
			tc.DisclosedVendors = &Vendors{MaxVendorID: 404, IsRangeEncoding: true, Ranges: RangesOf(1, 2, 3, 100, 404)}
			tc.PublisherPurposes = &PublisherPurposes{
				Consent: BitsOf(1, 3), LITransparency: BitsOf(2),
				NumCustomPurposes: 5, CustomConsent: BitsOf(1, 5), CustomLITransparency: BitsOf(2),
			}
		},
		"disclosed vendors as bitfield": func(tc *TCString) {
			tc.DisclosedVendors = &Vendors{MaxVendorID: 12, Ranges: RangesOf(1, 2, 3, 12)}
		},
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			want := validTC()
			edit(want)
			s := mustEncode(t, want)
			for _, in := range []string{s, pad(s)} {
				got, err := Decode(in)
				if err != nil {
					t.Fatalf("Decode(%s): %v", in, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Decode(Encode(x)) != x\n got %+v\nwant %+v", got, want)
				}
			}
		})
	}
}

func TestEncodeNormalizesRanges(t *testing.T) {
	tc := validTC()
	tc.VendorConsents = Vendors{IsRangeEncoding: true, Ranges: []Range{{10, 12}, {1, 3}, {4, 4}, {11, 20}}}
	got, err := Decode(mustEncode(t, tc))
	if err != nil {
		t.Fatal(err)
	}
	want := Vendors{MaxVendorID: 20, IsRangeEncoding: true, Ranges: []Range{{1, 4}, {10, 20}}}
	if !reflect.DeepEqual(got.VendorConsents, want) {
		t.Errorf("VendorConsents = %+v, want %+v", got.VendorConsents, want)
	}
	if tc.VendorConsents.Ranges[0] != (Range{10, 12}) {
		t.Error("Encode changed its input")
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := map[string]func(*TCString){
		"CmpID too big":         func(tc *TCString) { tc.CmpID = 4096 },
		"negative":              func(tc *TCString) { tc.VendorListVersion = -1 },
		"language":              func(tc *TCString) { tc.ConsentLanguage = "E" },
		"language not letters":  func(tc *TCString) { tc.PublisherCC = "F1" },
		"purpose 25":            func(tc *TCString) { tc.PurposesConsent = BitsOf(25) },
		"special feature 13":    func(tc *TCString) { tc.SpecialFeatureOptIns = BitsOf(13) },
		"before epoch":          func(tc *TCString) { tc.Created = time.Unix(-1, 0) },
		"vendor above max":      func(tc *TCString) { tc.VendorConsents = Vendors{MaxVendorID: 10, Ranges: RangesOf(11)} },
		"vendor 0":              func(tc *TCString) { tc.VendorConsents = Vendors{Ranges: []Range{{0, 3}}} },
		"backwards range":       func(tc *TCString) { tc.VendorConsents = Vendors{Ranges: []Range{{5, 3}}} },
		"vendor beyond 16 bits": func(tc *TCString) { tc.VendorConsents = Vendors{Ranges: []Range{{1, 65536}}} },
		"restriction type":      func(tc *TCString) { tc.PublisherRestrictions = []Restriction{{Purpose: 1, Type: 4}} },
		"custom purpose beyond count": func(tc *TCString) {
			tc.PublisherPurposes = &PublisherPurposes{NumCustomPurposes: 2, CustomConsent: BitsOf(3)}
		},
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			tc := validTC()
			edit(tc)
			if s, err := Encode(tc); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("Encode = %q, %v; want ErrOutOfRange", s, err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	good := mustEncode(t, validTC())
	// emptyRest writes empty vendor sections and no restrictions.
	emptyRest := func(w *writer) { w.put(0, 16+1+16+1+12) }
	tests := []struct {
		name string
		in   string
		want error
		why  string // in the message
	}{
		{"empty", "", ErrMalformed, "core: empty segment"},
		{"too long", good + "." + strings.Repeat("A", MaxLen), ErrTooLong, "too long"},
		{"not base64url", strings.Replace(good, good[5:6], "+", 1), ErrMalformed, "core: not base64url"},
		{"space", good + " ", ErrMalformed, "core: bad base64"},
		{"bad length", good[:len(good)-len(good)%4] + "A", ErrMalformed, "core: bad base64 length"},
		{"too much padding", good + "===", ErrMalformed, "bad base64 padding"},
		{"padding not to a multiple of 4", strings.TrimRight(pad(good), "=") + "A=", ErrMalformed, "bad base64 padding"},
		{"tcf v1", "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA", ErrVersion, "version is not 2"},
		{"truncated header", good[:20], ErrMalformed, "core: truncated"},
		{"truncated body", good[:40], ErrMalformed, "truncated"},
		{"empty core", ".YAAAAAAAAAAA", ErrMalformed, "core: empty segment"},
		{"trailing dot", good + ".", ErrMalformed, "segment: empty segment"},
		{"second core segment", good + "." + good, ErrMalformed, "second core segment"},
		{"repeated segment", official + ".YAAAAAAAAAAA", ErrMalformed, "segment type repeated"},
		{"segment shorter than its type", good + ".Y", ErrMalformed, "segment: bad base64 length"},
		{"truncated publisher purposes", good + ".YAAA", ErrMalformed, "publisher purposes: truncated"},
		{"truncated disclosed vendors", good + ".IDKQ", ErrMalformed, "disclosed vendors: truncated"},
		{"language letter past z", craftLetters(t, 26), ErrMalformed, "core: letter out of a-z"},
		{"vendor id 0", craft(t, func(w *writer) {
			w.put(10, 16) // MaxVendorId
			w.put(1, 1)   // IsRangeEncoding
			w.put(1, 12)  // NumEntries
			w.put(0, 1)   // single
			w.put(0, 16)  // vendor 0
			w.put(0, 16+1+16+1+12)
		}), ErrMalformed, "vendor consents: vendor id 0"},
		{"range runs backwards", craft(t, func(w *writer) {
			w.put(10, 16)
			w.put(1, 1)
			w.put(1, 12)
			w.put(1, 1)
			w.put(9, 16)
			w.put(5, 16)
			w.put(0, 16+1+16+1+12)
		}), ErrMalformed, "vendor consents: range entry ends before it starts"},
		{"range beyond MaxVendorId", craft(t, func(w *writer) {
			w.put(10, 16)
			w.put(1, 1)
			w.put(1, 12)
			w.put(0, 1)
			w.put(11, 16)
			w.put(0, 16+1+16+1+12)
		}), ErrMalformed, "vendor consents: range entry beyond MaxVendorId"},
		{"more entries than present", craft(t, func(w *writer) {
			w.put(10, 16)
			w.put(1, 1)
			w.put(4095, 12)
			for range 3 {
				w.put(0, 1)
				w.put(7, 16)
			}
		}), ErrMalformed, "vendor consents: truncated"},
		{"bit field longer than string", craft(t, func(w *writer) {
			w.put(65535, 16)
			w.put(0, 1)
			w.put(0, 64)
		}), ErrMalformed, "vendor consents: truncated"},
		{"no restrictions count", craft(t, func(w *writer) {
			w.put(0, 16+1+16+1) // 247 bits: one byte short of the 12-bit count
		}), ErrMalformed, "publisher restrictions: truncated"},
		{"restriction vendor 0", craft(t, func(w *writer) {
			w.put(0, 16+1+16+1)
			w.put(1, 12) // NumPubRestrictions
			w.put(3, 6)
			w.put(0, 2)
			w.put(1, 12)
			w.put(0, 1)
			w.put(0, 16)
		}), ErrMalformed, "publisher restrictions: vendor id 0"},
		{"restriction range backwards", craft(t, func(w *writer) {
			w.put(0, 16+1+16+1)
			w.put(1, 12)
			w.put(3, 6)
			w.put(0, 2)
			w.put(1, 12)
			w.put(1, 1)
			w.put(50, 16)
			w.put(40, 16)
		}), ErrMalformed, "publisher restrictions: range entry ends before it starts"},
		{"truncated restriction", craft(t, func(w *writer) {
			w.put(0, 16+1+16+1)
			w.put(2, 12)
			w.put(3, 6)
			w.put(0, 2)
			w.put(0, 12)
		}), ErrMalformed, "publisher restrictions: truncated"},
	}
	// A well-formed crafted string, to show the crafted failures are about
	// the one thing each case breaks.
	if _, err := Decode(craft(t, emptyRest)); err != nil {
		t.Fatalf("Decode(crafted good string): %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %+v, %v; want %v", got, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("error %q does not say %q", err, tt.why)
			}
			if got != nil {
				t.Errorf("Decode returned a value with error %v", err)
			}
			if g := Grants([]byte(tt.in), ourVendor); g != 0 {
				t.Errorf("Grants = %v, want nothing", g.Names())
			}
		})
	}
}

// craftLetters writes a header whose ConsentLanguage first letter is v.
func craftLetters(t *testing.T, v uint64) string {
	var w writer
	w.put(2, 6)
	w.put(0, 36+36+12+12+6)
	w.put(v, 6)
	w.put(0, 300)
	return w.text()
}

func TestUnknownSegmentsSkipped(t *testing.T) {
	s := mustEncode(t, validTC())
	want := Grants([]byte(s), ourVendor)
	if want == 0 {
		t.Fatal("validTC grants nothing")
	}
	// Types 2 (allowed vendors before v2.2) and 4-7 are skipped, even repeated.
	for _, extra := range []string{"QAAA", "QAAA.QAAA", "gA", "4AAAAAAAAAAAAAAAAAAA", "oA.oA"} {
		in := s + "." + extra
		if _, err := Decode(in); err != nil {
			t.Errorf("Decode(+%s): %v", extra, err)
		}
		if got := Grants([]byte(in), ourVendor); got != want {
			t.Errorf("Grants(+%s) = %v, want %v", extra, got.Names(), want.Names())
		}
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*TCString)
		valid bool
	}{
		{"valid", func(*TCString) {}, true},
		{"policy version 4", func(tc *TCString) { tc.TcfPolicyVersion = 4 }, true},
		{"policy version 3", func(tc *TCString) { tc.TcfPolicyVersion = 3 }, false},
		{"policy version 2", func(tc *TCString) { tc.TcfPolicyVersion = 2 }, false},
		{"not service specific", func(tc *TCString) { tc.IsServiceSpecific = false }, false},
		{"LI for purposes 2, 7-10", func(tc *TCString) { tc.PurposesLITransparency = BitsOf(2, 7, 8, 9, 10) }, true},
		{"LI for purpose 3", func(tc *TCString) { tc.PurposesLITransparency = BitsOf(3) }, false},
		{"LI for purpose 4", func(tc *TCString) { tc.PurposesLITransparency = BitsOf(4) }, false},
		{"LI for purpose 5", func(tc *TCString) { tc.PurposesLITransparency = BitsOf(5) }, false},
		{"LI for purpose 6", func(tc *TCString) { tc.PurposesLITransparency = BitsOf(2, 6) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := validTC()
			tt.edit(tc)
			err := tc.Valid()
			if (err == nil) != tt.valid || err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Valid() = %v, want valid %t", err, tt.valid)
			}
			// Invalid strings still decode, and grant nothing.
			s := mustEncode(t, tc)
			if _, err := Decode(s); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if g := Grants([]byte(s), ourVendor); (g != 0) != tt.valid {
				t.Errorf("Grants = %v, valid %t", g.Names(), tt.valid)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	tc := validTC()
	tc.PublisherRestrictions = []Restriction{{Purpose: 3, Type: NotAllowed, Vendors: []Range{{1, 40}, {42, 42}}}}
	b, err := json.Marshal(tc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"purposesConsent":[1,2,3,4,7]`,
		`"ranges":["42"]`,
		`"publisherRestrictions":[{"purpose":3,"type":"not_allowed","vendors":["1-40","42"]}]`,
		`"created":"2025-06-03T10:30:00Z"`,
		`"consentLanguage":"EN"`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	var back TCString
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, tc) {
		t.Errorf("JSON round trip\n got %+v\nwant %+v", back, *tc)
	}
}

func TestVendorsHas(t *testing.T) {
	v := Vendors{Ranges: RangesOf(1, 2, 3, 10, 12, 13, 65535)}
	if want := []Range{{1, 3}, {10, 10}, {12, 13}, {65535, 65535}}; !reflect.DeepEqual(v.Ranges, want) {
		t.Fatalf("RangesOf = %v, want %v", v.Ranges, want)
	}
	for id, want := range map[int]bool{0: false, 1: true, 3: true, 4: false, 10: true, 11: false, 13: true, 14: false, 65535: true, 65536: false, -1: false} {
		if got := v.Has(id); got != want {
			t.Errorf("Has(%d) = %t, want %t", id, got, want)
		}
	}
}
