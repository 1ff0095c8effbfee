package msgp

import "testing"

// A released decoder reads the next input from its start, not the rest of
// the previous one.
func TestDecoderReuse(t *testing.T) {
	first := AppendUint(AppendString(nil, "left over"), 7)
	d := AcquireDecoder(first)
	if s, err := d.DecodeString(); err != nil || s != "left over" {
		t.Fatalf("first: %q %v", s, err)
	}
	if d.Unread() != 1 {
		t.Fatalf("unread %d, want 1 (the uint 7)", d.Unread())
	}
	ReleaseDecoder(d)
	for range 3 {
		d := AcquireDecoder(AppendInt(nil, -129))
		if v, err := d.DecodeInt64(); err != nil || v != -129 {
			t.Fatalf("second: %d %v", v, err)
		}
		if d.Unread() != 0 {
			t.Fatalf("unread %d after the only value", d.Unread())
		}
		ReleaseDecoder(d)
	}
}
