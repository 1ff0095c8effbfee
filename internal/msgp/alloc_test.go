//go:build !race

package msgp

import "testing"

// Decoding through the pool allocates nothing once the pool holds a decoder.
func TestDecoderAllocs(t *testing.T) {
	b := AppendInt(AppendString(nil, "k"), 42)
	n := testing.AllocsPerRun(100, func() {
		d := AcquireDecoder(b)
		if _, err := d.DecodeString(); err != nil {
			t.Fatal(err)
		}
		if v, err := d.DecodeInt64(); err != nil || v != 42 {
			t.Fatal(v, err)
		}
		ReleaseDecoder(d)
	})
	if n > 1 {
		t.Fatalf("%.1f allocations per decode, want at most 1 (the string)", n)
	}
}
