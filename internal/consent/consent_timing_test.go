package consent

import (
	"encoding/base64"
	"testing"
)

// BenchmarkGrants measures the edge's path on typical strings, next to full
// Decode and to a bare base64 decode of the same bytes (a floor for any
// decoder that starts by decoding base64), all in the same run.
func BenchmarkGrants(b *testing.B) {
	wide := validTC()
	wide.VendorConsents = Vendors{MaxVendorID: 1200, Ranges: []Range{{1, 300}, {ourVendor + 400, 1100}}}
	wide.VendorConsents.Ranges[0].End = ourVendor
	wide.VendorLegitimateInterests = Vendors{MaxVendorID: 1200, Ranges: []Range{{2, 900}}}
	ranged := validTC()
	ranged.VendorConsents = Vendors{IsRangeEncoding: true, Ranges: RangesOf(3, 9, 27, ourVendor, 81, 243, 729)}
	restricted := validTC()
	for p := 1; p <= 10; p++ {
		restricted.PublisherRestrictions = append(restricted.PublisherRestrictions,
			Restriction{Purpose: p, Type: RestrictionType(p % 3), Vendors: RangesOf(5, 50, 500)})
	}
	restricted.DisclosedVendors = &Vendors{MaxVendorID: 1200, Ranges: []Range{{1, 1200}}}
	cases := []struct{ name, s string }{
		{"official", official},
		{"bitfield-1200", mustEncode(b, wide)},
		{"ranges", mustEncode(b, ranged)},
		{"restrictions+disclosed", mustEncode(b, restricted)},
	}
	for _, c := range cases {
		in := []byte(c.s)
		b.Run("grants/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			var sink Set
			for b.Loop() {
				sink |= Grants(in, ourVendor)
			}
			_ = sink
		})
		b.Run("decode/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := Decode(c.s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("base64/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			var buf [MaxLen]byte
			for b.Loop() {
				rest := in
				for len(rest) > 0 {
					seg, r, _ := cut(rest)
					rest = r
					if _, err := base64.RawURLEncoding.Decode(buf[:], seg); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func BenchmarkEvaluate(b *testing.B) {
	s := Signals{GDPRApplies: 1, TCString: []byte(mustEncode(b, validTC()))}
	p := Policy{VendorID: ourVendor}
	b.ReportAllocs()
	var sink Set
	for b.Loop() {
		sink |= Evaluate(s, p)
	}
	_ = sink
}
