package segments

import (
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func sampleRecord() Record {
	return Record{
		Visitor:  "v-123",
		Segments: []Score{{ID: "home", Score: 0.5, At: 1_700_000_000_000, Rule: "keyword:plumber*"}, {ID: "home.plumbing", Score: 1.25, At: -5}},
		Langs:    []string{"ru", "en"},
		Caps:     []Cap{{Campaign: "c1", Times: []int64{1, 2, 1 << 40}}, {Campaign: "c2", Times: []int64{}}},
		LastSeen: 1_700_000_000_001,
		Events:   1 << 33,
		Since:    42,
		Applied:  []uint64{1, 300, 70000, 1 << 35},
	}
}

func TestRecordCodec(t *testing.T) {
	long := make([]Score, 40)
	for i := range long {
		long[i] = Score{ID: string(rune('a'+i%26)) + "x", Score: float64(i), At: int64(i) * 1000}
	}
	for name, r := range map[string]Record{
		"empty":  {},
		"sample": sampleRecord(),
		"long":   {Visitor: string(make([]byte, 300)), Segments: long},
	} {
		t.Run(name, func(t *testing.T) {
			var got Record
			if err := DecodeRecord(r.AppendMsgpack(nil), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normalize(got), normalize(r)) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
			}
			// What msgpack/v5 writes, DecodeRecord reads, and the other way round.
			b, err := msgpack.Marshal(&r)
			if err != nil {
				t.Fatal(err)
			}
			got = Record{}
			if err := DecodeRecord(b, &got); err != nil || !reflect.DeepEqual(normalize(got), normalize(r)) {
				t.Errorf("from msgpack.Marshal: %v\n got %+v", err, got)
			}
			var viaLib Record
			if err := msgpack.Unmarshal(r.AppendMsgpack(nil), &viaLib); err != nil || !reflect.DeepEqual(normalize(viaLib), normalize(r)) {
				t.Errorf("msgpack.Unmarshal: %v\n got %+v", err, viaLib)
			}
		})
	}
}

// normalize makes nil and empty slices equal.
func normalize(r Record) Record {
	if len(r.Segments) == 0 {
		r.Segments = nil
	}
	if len(r.Langs) == 0 {
		r.Langs = nil
	}
	if len(r.Caps) == 0 {
		r.Caps = nil
	}
	for i := range r.Caps {
		if len(r.Caps[i].Times) == 0 {
			r.Caps[i].Times = nil
		}
	}
	if len(r.Applied) == 0 {
		r.Applied = nil
	}
	return r
}

func TestDecodeRecordRefuses(t *testing.T) {
	good := sampleRecord()
	b := good.AppendMsgpack(nil)
	for name, in := range map[string][]byte{
		"truncated": b[:len(b)-3],
		"trailing":  append(append([]byte{}, b...), 0xc0),
		"not a map": {0x93, 1, 2, 3},
		"too large": make([]byte, MaxRecordSize+1),
	} {
		var r Record
		if err := DecodeRecord(in, &r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	r := sampleRecord()
	f.Add(r.AppendMsgpack(nil))
	f.Add([]byte{0x80})
	f.Add([]byte{0xde, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if DecodeRecord(b, &r) != nil {
			return
		}
		// What decodes, encodes and decodes to the same record.
		var again Record
		if err := DecodeRecord(r.AppendMsgpack(nil), &again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(r)) && !hasNaN(r) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, again)
		}
	})
}

func hasNaN(r Record) bool {
	for _, s := range r.Segments {
		if s.Score != s.Score {
			return true
		}
	}
	return false
}
