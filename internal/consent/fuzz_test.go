package consent

import (
	"encoding/json"
	"reflect"
	"testing"
)

// fuzzSeeds are real and built strings, padded forms and garbage.
func fuzzSeeds(f *testing.F) []string {
	full := validTC()
	full.VendorConsents = Vendors{IsRangeEncoding: true, Ranges: []Range{{1, 10}, {ourVendor, 300}}}
	full.PurposesLITransparency = BitsOf(2, 7)
	full.VendorLegitimateInterests = Vendors{MaxVendorID: 64, Ranges: RangesOf(3, ourVendor)}
	full.PublisherRestrictions = []Restriction{
		{Purpose: 3, Type: NotAllowed, Vendors: []Range{{ourVendor, ourVendor}}},
		{Purpose: 7, Type: RequireConsent, Vendors: []Range{{1, 100}}},
	}
	full.DisclosedVendors = &Vendors{MaxVendorID: 404, IsRangeEncoding: true, Ranges: RangesOf(1, 2, ourVendor, 404)}
	full.PublisherPurposes = &PublisherPurposes{Consent: BitsOf(1, 2), NumCustomPurposes: 2, CustomConsent: BitsOf(1)}
	return []string{
		official,
		pad(official),
		mustEncode(f, validTC()),
		mustEncode(f, full),
		pad(mustEncode(f, full)),
		mustEncode(f, full) + ".QAAA",
		"",
		".",
		"C",
		"CAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA",
		"%%%",
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tc, err := Decode(s)
		if fast := Grants([]byte(s), ourVendor); err != nil || fast != tc.Grants(ourVendor) {
			if err == nil || fast != 0 {
				t.Fatalf("Decode error %v, Grants %v, TCString.Grants %v", err, fast.Names(), tc.Grants(ourVendor).Names())
			}
			return
		}
		if _, err := json.Marshal(tc); err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		_ = tc.Valid()
		// Whatever decodes encodes, and reads back the same.
		enc, err := Encode(tc)
		if err != nil {
			t.Fatalf("Encode(Decode(%q)): %v", s, err)
		}
		back, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = %v", s, err)
		}
		if !reflect.DeepEqual(back, tc) {
			t.Fatalf("round trip of %q\n got %+v\nwant %+v", s, back, tc)
		}
	})
}

func FuzzGrants(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add([]byte(s), uint16(ourVendor))
		f.Add([]byte(s), uint16(1))
	}
	f.Fuzz(func(t *testing.T, tc []byte, vendor uint16) {
		got := Grants(tc, int(vendor))
		if want := decodedGrants(tc, int(vendor)); got != want {
			t.Fatalf("Grants = %v, Decode then Grants = %v", got.Names(), want.Names())
		}
		if got.Allow(LinkIdentity) {
			t.Fatal("Grants gave LinkIdentity")
		}
	})
}
