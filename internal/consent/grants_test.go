package consent

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

const (
	personalAll = 1<<StoreOnDevice | 1<<BuildProfile | 1<<Personalize
	tcfAll      = personalAll | 1<<Contextual | 1<<Measure
)

func TestGrantsRules(t *testing.T) {
	liOnly := func(tc *TCString) {
		tc.PurposesConsent = 0
		tc.PurposesLITransparency = BitsOf(2, 7)
		tc.VendorConsents = Vendors{}
		tc.VendorLegitimateInterests = Vendors{Ranges: RangesOf(ourVendor)}
	}
	restrict := func(purpose int, typ RestrictionType, vendors ...int) func(*TCString) {
		return func(tc *TCString) {
			tc.PublisherRestrictions = append(tc.PublisherRestrictions,
				Restriction{Purpose: purpose, Type: typ, Vendors: RangesOf(vendors...)})
		}
	}
	tests := []struct {
		name   string
		edits  []func(*TCString)
		vendor int
		want   Set
	}{
		{"consent for 1-4 and 7", nil, ourVendor, tcfAll},
		{"another vendor", nil, ourVendor + 1, 0},
		{"vendor id 0", nil, 0, 0},
		{"vendor id beyond 16 bits", nil, 1 << 16, 0},
		{"range encoded vendor consent", []func(*TCString){func(tc *TCString) {
			tc.VendorConsents = Vendors{IsRangeEncoding: true, Ranges: []Range{{1, 500}}}
		}}, ourVendor, tcfAll},
		{"bitfield ending at our vendor", []func(*TCString){func(tc *TCString) {
			tc.VendorConsents = Vendors{Ranges: []Range{{ourVendor - 1, ourVendor}}}
		}}, ourVendor, tcfAll},
		{"each purpose maps to its activity", []func(*TCString){func(tc *TCString) {
			tc.PurposesConsent = BitsOf(1, 4)
		}}, ourVendor, 1<<StoreOnDevice | 1<<Personalize},
		{"purpose 2 alone is contextual", []func(*TCString){func(tc *TCString) {
			tc.PurposesConsent = BitsOf(2)
		}}, ourVendor, 1 << Contextual},
		{"purposes without vendor consent", []func(*TCString){func(tc *TCString) {
			tc.VendorConsents = Vendors{}
		}}, ourVendor, 0},
		{"LI for 2 and 7 with vendor LI", []func(*TCString){liOnly}, ourVendor, 1<<Contextual | 1<<Measure},
		{"purpose LI needs vendor LI, not vendor consent", []func(*TCString){liOnly, func(tc *TCString) {
			tc.VendorConsents = tc.VendorLegitimateInterests
			tc.VendorLegitimateInterests = Vendors{}
		}}, ourVendor, 0},
		{"vendor LI does not stand in for consent purposes", []func(*TCString){func(tc *TCString) {
			tc.VendorLegitimateInterests = tc.VendorConsents
			tc.VendorConsents = Vendors{}
		}}, ourVendor, 0},
		{"LI for purpose 1 is not enough to store", []func(*TCString){liOnly, func(tc *TCString) {
			tc.PurposesLITransparency = tc.PurposesLITransparency.With(1)
		}}, ourVendor, 1<<Contextual | 1<<Measure},
		{"not allowed on 3 for us", []func(*TCString){restrict(3, NotAllowed, ourVendor)}, ourVendor, tcfAll &^ (1 << BuildProfile)},
		{"not allowed on 1 in a range", []func(*TCString){restrict(1, NotAllowed, 1, 2, 40, 41, 42, 43)}, ourVendor, tcfAll &^ (1 << StoreOnDevice)},
		{"not allowed on 3 for another vendor", []func(*TCString){restrict(3, NotAllowed, ourVendor+1)}, ourVendor, tcfAll},
		{"not allowed on 7 removes LI too", []func(*TCString){liOnly, restrict(7, NotAllowed, ourVendor)}, ourVendor, 1 << Contextual},
		{"require consent on 7 rules out LI", []func(*TCString){liOnly, restrict(7, RequireConsent, ourVendor)}, ourVendor, 1 << Contextual},
		{"require consent on 7 keeps consent", []func(*TCString){restrict(7, RequireConsent, ourVendor)}, ourVendor, tcfAll},
		{"require LI on 2 rules out consent", []func(*TCString){restrict(2, RequireLI, ourVendor)}, ourVendor, tcfAll &^ (1 << Contextual)},
		{"undefined restriction type means nothing", []func(*TCString){restrict(1, undefinedRestriction, ourVendor)}, ourVendor, tcfAll},
		{"restriction with no vendors", []func(*TCString){restrict(1, NotAllowed)}, ourVendor, tcfAll},
		{"policy version 3", []func(*TCString){func(tc *TCString) { tc.TcfPolicyVersion = 3 }}, ourVendor, 0},
		{"not service specific", []func(*TCString){func(tc *TCString) { tc.IsServiceSpecific = false }}, ourVendor, 0},
		{"LI on purpose 4", []func(*TCString){func(tc *TCString) { tc.PurposesLITransparency = BitsOf(4) }}, ourVendor, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := validTC()
			for _, edit := range tt.edits {
				edit(tc)
			}
			s := mustEncode(t, tc)
			if got := Grants([]byte(s), tt.vendor); got != tt.want {
				t.Errorf("Grants = %v, want %v", got.Names(), tt.want.Names())
			}
			if got := tc.Grants(tt.vendor); got != tt.want {
				t.Errorf("TCString.Grants = %v, want %v", got.Names(), tt.want.Names())
			}
		})
	}
}

func TestGrantsNeverLinksIdentity(t *testing.T) {
	tc := validTC()
	tc.PurposesConsent = 1<<24 - 1
	tc.SpecialFeatureOptIns = 1<<12 - 1
	tc.PurposesLITransparency = BitsOf(2, 7, 8, 9, 10)
	tc.VendorLegitimateInterests = tc.VendorConsents
	if got := Grants([]byte(mustEncode(t, tc)), ourVendor); got != tcfAll {
		t.Errorf("Grants = %v, want %v", got.Names(), Set(tcfAll).Names())
	}
}

// TestGrantsAgreesWithDecode builds many strings and checks that the fast
// path reads them as Decode does, and that Encode/Decode round-trip them.
func TestGrantsAgreesWithDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	granting := 0
	const n = 3000
	for i := range n {
		want := randomTC(rng)
		s := mustEncode(t, want)
		got, err := Decode(s)
		if err != nil {
			t.Fatalf("#%d Decode(%s): %v", i, s, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("#%d round trip of %s\n got %+v\nwant %+v", i, s, got, want)
		}
		for _, v := range []int{ourVendor, 1, 1 + rng.IntN(120), 65535} {
			fast, ref := Grants([]byte(s), v), got.Grants(v)
			if fast != ref {
				t.Fatalf("#%d vendor %d: Grants = %v, TCString.Grants = %v\n%s\n%+v",
					i, v, fast.Names(), ref.Names(), s, got)
			}
			if v == ourVendor && fast != 0 {
				granting++
			}
		}
		// A damaged copy: one character changed, or cut short.
		b := []byte(s)
		if rng.IntN(2) == 0 {
			b[rng.IntN(len(b))] = alphabet[rng.IntN(len(alphabet))]
		} else {
			b = b[:rng.IntN(len(b))]
		}
		if fast, ref := Grants(b, ourVendor), decodedGrants(b, ourVendor); fast != ref {
			t.Fatalf("#%d damaged %s: Grants = %v, Decode then Grants = %v", i, b, fast.Names(), ref.Names())
		}
	}
	// The generator must reach both outcomes often, or the test proves little.
	if granting < n/5 || granting > n*4/5 {
		t.Errorf("%d of %d strings grant something to our vendor; the generator is off", granting, n)
	}
}

// decodedGrants is the reference for Grants: Decode, then read the fields.
func decodedGrants(tc []byte, vendorID int) Set {
	d, err := Decode(string(tc))
	if err != nil {
		return 0
	}
	return d.Grants(vendorID)
}

// randomTC makes a string near the rules' edges: ids clustered around
// ourVendor, both vendor encodings, restrictions, mostly valid headers.
func randomTC(rng *rand.Rand) *TCString {
	tc := validTC()
	tc.TcfPolicyVersion = []int{2, 4, 4, 5, 5, 5}[rng.IntN(6)]
	tc.IsServiceSpecific = rng.IntN(10) > 0
	tc.UseNonStandardTexts = rng.IntN(2) == 0
	tc.PurposeOneTreatment = rng.IntN(4) == 0
	tc.SpecialFeatureOptIns = Bits(rng.Uint64() & (1<<12 - 1))
	tc.PurposesConsent = Bits(rng.Uint64()&(1<<24-1)) | BitsOf(1, 2, 3, 4, 7)&Bits(rng.Uint64())
	tc.PurposesLITransparency = Bits(rng.Uint64() & (1<<24 - 1))
	if rng.IntN(5) > 0 {
		tc.PurposesLITransparency &^= liForbidden
	}
	tc.VendorConsents = randomVendors(rng)
	tc.VendorLegitimateInterests = randomVendors(rng)
	tc.PublisherRestrictions = nil
	for range rng.IntN(4) {
		purpose := []int{1, 2, 3, 4, 7, 1 + rng.IntN(24)}[rng.IntN(6)]
		tc.PublisherRestrictions = append(tc.PublisherRestrictions, Restriction{
			Purpose: purpose,
			Type:    RestrictionType(rng.IntN(4)),
			Vendors: randomRanges(rng),
		})
	}
	if rng.IntN(3) == 0 {
		v := randomVendors(rng)
		tc.DisclosedVendors = &v
	}
	if rng.IntN(3) == 0 {
		n := rng.IntN(64)
		mask := Bits(1<<n - 1)
		tc.PublisherPurposes = &PublisherPurposes{
			Consent:              Bits(rng.Uint64() & (1<<24 - 1)),
			LITransparency:       Bits(rng.Uint64() & (1<<24 - 1)),
			NumCustomPurposes:    n,
			CustomConsent:        Bits(rng.Uint64()) & mask,
			CustomLITransparency: Bits(rng.Uint64()) & mask,
		}
	}
	return tc
}

func randomVendors(rng *rand.Rand) Vendors {
	rs := randomRanges(rng)
	maxID := lastID(rs)
	if rng.IntN(3) == 0 {
		maxID = min(maxID+rng.IntN(200), maxVendor)
	}
	return Vendors{MaxVendorID: maxID, IsRangeEncoding: rng.IntN(2) == 0, Ranges: rs}
}

func randomRanges(rng *rand.Rand) []Range {
	var rs []Range
	if rng.IntN(2) == 0 {
		rs = append(rs, Range{ourVendor, ourVendor})
	}
	for range rng.IntN(5) {
		lo := 1 + rng.IntN(100)
		rs = append(rs, Range{lo, lo + rng.IntN(3)*rng.IntN(20)})
	}
	if rng.IntN(10) == 0 {
		rs = append(rs, Range{60000, 65535})
	}
	return normalize(rs)
}
