package event

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/adsyn/adsyn/internal/consent"
)

// viaLibrary decodes the events of body with msgpack/v5 alone: the oracle
// the hand-written decoder is held to. It returns the events decoded and
// whether all of body decoded.
func viaLibrary(body []byte) ([]Event, bool) {
	d := msgpack.NewDecoder(bytes.NewReader(body))
	r := bytes.NewReader(body)
	d.Reset(r)
	var out []Event
	for r.Len() > 0 {
		var e Event
		if err := d.Decode(&e); err != nil {
			return out, false
		}
		out = append(out, e)
	}
	return out, true
}

// same compares events as stored: an empty category list is one, nil or not.
func same(a, b Event) bool {
	if len(a.Categories) == 0 && len(b.Categories) == 0 {
		a.Categories, b.Categories = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

// decodeCases are events as the encoder writes them, and as other
// encoders might: every field, none, long strings, many categories.
func decodeCases() [][]byte {
	full := sample()
	var cases [][]byte
	for _, e := range []Event{
		full, {}, {Kind: KindPageview, ID: NewID()}, {TS: -5, Kind: KindCall, Value: 60},
		{Kind: KindSearch, Query: string(bytes.Repeat([]byte("q"), 300)), Categories: []string{}},
		{Kind: KindPageview, Device: Device{Browser: "chrome"}, Consent: consent.All},
		{Kind: KindCustom, Categories: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"}},
		{Kind: KindPageview, URL: string(bytes.Repeat([]byte("u"), 1000))}, // str 16
	} {
		cases = append(cases, e.Marshal())
		if b, err := msgpack.Marshal(&e); err == nil { // msgpack/v5's own forms
			cases = append(cases, b)
		}
	}
	return cases
}

// TestDecodeAgreesWithLibrary: each case decodes to what msgpack/v5 makes
// of it, and the encoder's own output takes the hand-written path.
func TestDecodeAgreesWithLibrary(t *testing.T) {
	for i, b := range decodeCases() {
		want, ok := viaLibrary(b)
		if !ok || len(want) != 1 {
			t.Fatalf("case %d: msgpack/v5 fails", i)
		}
		var got Event
		if err := Unmarshal(b, &got); err != nil || !same(got, want[0]) {
			t.Errorf("case %d: Unmarshal = %+v, %v;\n msgpack/v5 %+v", i, got, err, want[0])
		}
	}
	e := sample()
	var got Event
	if n, ok := decodeFast(e.Marshal(), &got); !ok || n != len(e.Marshal()) || !same(got, e) {
		t.Errorf("the encoder's output did not take the hand-written path: %d, %v, %+v", n, ok, got)
	}
}

// TestDecodeBatchAgreesWithLibrary: a batch mixing every case decodes
// event for event as msgpack/v5 reads it.
func TestDecodeBatchAgreesWithLibrary(t *testing.T) {
	var body []byte
	for _, b := range decodeCases() {
		body = append(body, b...)
	}
	want, ok := viaLibrary(body)
	if !ok {
		t.Fatal("msgpack/v5 fails")
	}
	var got []Event
	if _, err := DecodeBatch(body, func(e *Event) error {
		c := *e
		c.Categories = append([]string(nil), e.Categories...)
		got = append(got, c)
		return nil
	}); err != nil || len(got) != len(want) {
		t.Fatalf("decoded %d of %d events, then %v", len(got), len(want), err)
	}
	for i := range got {
		if !same(got[i], want[i]) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// FuzzDecodeAgreesWithLibrary: whatever the bytes, when the hand-written
// decoder takes an event, msgpack/v5 reads the same event from the same
// bytes; and a batch decodes as msgpack/v5 reads it, event for event.
func FuzzDecodeAgreesWithLibrary(f *testing.F) {
	for _, b := range decodeCases() {
		if len(b) < 4096 {
			f.Add(b)
		}
	}
	e := sample()
	dup := e.Marshal()
	dup[2] += 2 // two more pairs: the device and the categories again
	dup = append(dup, 0xa1, 'd', 0x81, 0xa1, 'b', 0xa1, 'x', 0xa1, 'c', 0x91, 0xa1, 'y')
	f.Add(dup)
	f.Add([]byte{0x82, 0xa1, 'k', 0xcc, 0xff, 0xa2, 't', 's', 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe})
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Event
		n, ok := decodeFast(b, &fast)
		if ok {
			var lib Event
			r := bytes.NewReader(b)
			d := msgpack.NewDecoder(r)
			d.Reset(r)
			if err := d.Decode(&lib); err != nil {
				t.Fatalf("decoded by hand, but msgpack/v5 says %v", err)
			}
			if used := len(b) - r.Len(); used != n {
				t.Fatalf("took %d bytes by hand, msgpack/v5 %d", n, used)
			}
			if !same(fast, lib) {
				t.Fatalf("by hand %+v\nmsgpack/v5 %+v", fast, lib)
			}
		}
		want, _ := viaLibrary(b)
		i := 0
		_, err := DecodeBatch(b, func(e *Event) error {
			if i >= len(want) || !same(*e, want[i]) {
				t.Fatalf("batch event %d: %+v, msgpack/v5 has %d events", i, *e, len(want))
			}
			i++
			return nil
		})
		if err == nil && i != len(want) {
			t.Fatalf("batch decoded %d events, msgpack/v5 %d", i, len(want))
		}
	})
}
