//go:build !race

package consent

import "testing"

// The edge calls these per request: they must not allocate, whatever the input.
func TestNoAllocs(t *testing.T) {
	tc := validTC()
	tc.VendorLegitimateInterests = Vendors{IsRangeEncoding: true, Ranges: []Range{{1, 10}, {ourVendor, 900}}}
	tc.PublisherRestrictions = []Restriction{{Purpose: 3, Type: NotAllowed, Vendors: []Range{{1, 50}}}}
	tc.DisclosedVendors = &Vendors{MaxVendorID: 500, Ranges: RangesOf(1, ourVendor, 500)}
	tc.PublisherPurposes = &PublisherPurposes{Consent: BitsOf(1), NumCustomPurposes: 3, CustomConsent: BitsOf(2)}
	inputs := map[string][]byte{
		"official":    []byte(official),
		"valid":       []byte(mustEncode(t, validTC())),
		"full":        []byte(mustEncode(t, tc)),
		"garbage":     []byte("%%%not base64%%%"),
		"truncated":   []byte(mustEncode(t, tc)[:30]),
		"empty":       nil,
		"too long":    make([]byte, MaxLen+1),
		"v1":          []byte("BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA"),
		"bad segment": []byte(mustEncode(t, tc) + ".IDKQ"),
	}
	var sink Set
	for name, in := range inputs {
		if n := testing.AllocsPerRun(100, func() { sink |= Grants(in, ourVendor) }); n != 0 {
			t.Errorf("Grants(%s): %v allocs/op", name, n)
		}
		s := Signals{GDPRApplies: 1, TCString: in, GPC: GPC([]byte("1"))}
		if n := testing.AllocsPerRun(100, func() { sink |= Evaluate(s, Policy{VendorID: ourVendor}) }); n != 0 {
			t.Errorf("Evaluate(%s): %v allocs/op", name, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		if GPC([]byte("1")) && OptedOut([]byte("1")) && ParseGDPR([]byte("1")) == 1 {
			sink++
		}
	}); n != 0 {
		t.Errorf("GPC, OptedOut, ParseGDPR: %v allocs/op", n)
	}
	_ = sink
}
