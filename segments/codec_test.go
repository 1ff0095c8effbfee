package segments

import (
	"bytes"
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
	f.Add(sampleRecordViaLib(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		err := DecodeRecord(b, &r)
		// msgpack/v5's own decoding by reflection is the oracle: a record it
		// reads whole, DecodeRecord reads the same.
		var lib Record
		if libErr := msgpack.Unmarshal(b, &lib); libErr == nil && len(b) <= MaxRecordSize && mapAtTop(b) {
			if err != nil {
				t.Fatalf("msgpack/v5 reads %x as %+v; DecodeRecord: %v", b, lib, err)
			}
			if !reflect.DeepEqual(normalize(lib), normalize(r)) && !hasNaN(r) {
				t.Fatalf("%x:\n msgpack/v5 %+v\nDecodeRecord %+v", b, lib, r)
			}
		}
		if err != nil {
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

func sampleRecordViaLib(tb testing.TB) []byte {
	r := sampleRecord()
	b, err := msgpack.Marshal(&r)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// mapAtTop reports whether b holds a map with nothing after it (msgpack/v5
// also reads a struct from an array, and Unmarshal ignores trailing bytes;
// a stored record is neither).
func mapAtTop(b []byte) bool {
	d := msgpack.NewDecoder(bytes.NewReader(b))
	if _, err := d.DecodeMapLen(); err != nil {
		return false
	}
	d.Reset(bytes.NewReader(b))
	if err := d.Skip(); err != nil {
		return false
	}
	n, _ := d.Buffered().Read(make([]byte, 1))
	return n == 0
}
