package msgp

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TestAgreesWithMsgpack checks every form against msgpack/v5's decoder.
func TestAgreesWithMsgpack(t *testing.T) {
	for _, s := range []string{"", "a", strings.Repeat("x", 31), strings.Repeat("y", 200), strings.Repeat("z", 70000)} {
		var got string
		if err := msgpack.Unmarshal(AppendString(nil, s), &got); err != nil || got != s {
			t.Errorf("string of %d: %v", len(s), err)
		}
		var bin []byte
		if err := msgpack.Unmarshal(AppendBin(nil, []byte(s)), &bin); err != nil || string(bin) != s {
			t.Errorf("bin of %d: %v", len(s), err)
		}
	}
	for _, v := range []uint64{0, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64} {
		var got uint64
		if err := msgpack.Unmarshal(AppendUint(nil, v), &got); err != nil || got != v {
			t.Errorf("uint %d: %d %v", v, got, err)
		}
	}
	for _, v := range []int64{0, 5, -1, -129, math.MinInt64, math.MaxInt64} {
		var got int64
		if err := msgpack.Unmarshal(AppendInt(nil, v), &got); err != nil || got != v {
			t.Errorf("int %d: %d %v", v, got, err)
		}
	}
	var f float64
	if err := msgpack.Unmarshal(AppendFloat64(nil, 2.5), &f); err != nil || f != 2.5 {
		t.Errorf("float: %v %v", f, err)
	}
	for _, n := range []int{0, 3, 15, 16, 70000} {
		b := AppendArrayHeader(nil, n)
		for i := range n {
			b = AppendUint(b, uint64(i%100))
		}
		var got []int
		if err := msgpack.Unmarshal(b, &got); err != nil || len(got) != n {
			t.Errorf("array of %d: %d %v", n, len(got), err)
		}
		m := AppendMapHeader(nil, n)
		for i := range n {
			m = AppendUint(AppendUint(m, uint64(i)), 1)
		}
		var gm map[int]int
		if err := msgpack.Unmarshal(m, &gm); err != nil || len(gm) != n {
			t.Errorf("map of %d: %d %v", n, len(gm), err)
		}
	}
	b, at := Map16(nil)
	b = AppendString(AppendString(b, "k"), "v")
	PatchMap16(b, at, 1)
	var gm map[string]string
	if err := msgpack.Unmarshal(b, &gm); err != nil || !reflect.DeepEqual(gm, map[string]string{"k": "v"}) {
		t.Errorf("map16: %v %v", gm, err)
	}
}
