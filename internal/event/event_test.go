package event

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/adsyn/adsyn/internal/consent"
)

func sample() Event {
	return Event{
		ID: NewID(), TS: 1764000000123, Kind: KindSearch, Visitor: "AAAAAAAAAAAAAAAAAAAAAA",
		Site: "site-1", Slot: "top", Campaign: "c1", Creative: "cr1",
		URL: "https://example.org/" + strings.Repeat("p", 300), Referrer: "https://ref.example/",
		Query: "plumber moscow", Categories: []string{"home", "repair"}, Lang: "ru", Country: "RU",
		Device: Device{Type: "mobile", OS: "Android", OSVersion: "14", Model: "SM-S918B"},
		IP:     "203.0.113.0", Consent: consent.All, Value: 12.5, Name: "signup", NewVisitor: true,
	}
}

func TestRoundTrip(t *testing.T) {
	for _, e := range []Event{sample(), {ID: NewID(), Kind: KindPageview}, {Kind: KindCall, TS: -5, Value: 60}} {
		b := e.Marshal()
		var got Event
		if err := Unmarshal(b, &got); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
		}
		// The hand-written encoder agrees with msgpack/v5's reading of the tags.
		var viaLib Event
		if err := msgpack.Unmarshal(b, &viaLib); err != nil || !reflect.DeepEqual(viaLib, e) {
			t.Errorf("msgpack/v5 reads %+v, %v", viaLib, err)
		}
	}
}

func TestLibraryEncodingDecodes(t *testing.T) {
	e := sample()
	b, err := msgpack.Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	var got Event
	if err := Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestDecodeBatch(t *testing.T) {
	var body []byte
	var want []Event
	for i := range 50 {
		e := sample()
		e.TS = int64(i)
		if i%2 == 0 {
			e.Categories = nil
		}
		want = append(want, e)
		body = e.AppendMsgpack(body)
	}
	var got []Event
	n, err := DecodeBatch(body, func(e *Event) error {
		c := *e
		c.Categories = append([]string(nil), e.Categories...)
		if len(c.Categories) == 0 {
			c.Categories = nil
		}
		got = append(got, c)
		return nil
	})
	if err != nil || n != 50 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Error("batch differs")
	}
	if _, err := DecodeBatch(body[:len(body)-3], func(*Event) error { return nil }); err == nil {
		t.Error("truncated batch decoded")
	}
}

func TestSubjectAndPartition(t *testing.T) {
	e := Event{Visitor: "abc", Kind: KindClick}
	p := e.Partition(DefaultPartitions)
	if p < 0 || p >= DefaultPartitions {
		t.Fatalf("partition %d", p)
	}
	if e2 := (Event{Visitor: "abc", Kind: KindPageview, ID: NewID()}); e2.Partition(DefaultPartitions) != p {
		t.Error("one visitor's events must share a partition")
	}
	if got := Subject(KindClick, 7); got != "adsyn.ev.click.7" {
		t.Errorf("subject %q", got)
	}
	if ParseKind([]byte("viewable")) != KindViewable || ParseKind([]byte("nope")) != KindUnknown {
		t.Error("ParseKind")
	}
}

func FuzzDecodeBatch(f *testing.F) {
	e := sample()
	f.Add(e.Marshal())
	f.Add(append(e.Marshal(), e.Marshal()...))
	f.Add([]byte{0xde, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeBatch(b, func(e *Event) error {
			// Whatever decodes must encode and decode to the same event.
			var again Event
			if err := Unmarshal(e.Marshal(), &again); err != nil {
				t.Fatalf("re-decode: %v", err)
			}
			return nil
		})
	})
}

// TestWireBytes holds the encoder to bytes written by hand from the
// MessagePack spec: map 16 of 5 pairs; "id" bin 8 of 16 bytes; "ts"
// positive fixint; "k" fixint; "cs" fixint; "v" fixstr.
func TestWireBytes(t *testing.T) {
	e := Event{ID: ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, TS: 5, Kind: KindPageview, Visitor: "ab"}
	want := []byte{0xde, 0x00, 0x05,
		0xa2, 'i', 'd', 0xc4, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
		0xa2, 't', 's', 0x05,
		0xa1, 'k', 0x01,
		0xa2, 'c', 's', 0x00,
		0xa1, 'v', 0xa2, 'a', 'b'}
	if got := e.Marshal(); string(got) != string(want) {
		t.Errorf("encoded % x\n   want % x", got, want)
	}
}
