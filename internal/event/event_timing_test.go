package event

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkEncode compares the hand-written encoder with msgpack/v5's
// reflection encoder (the baseline twin) on the same event.
func BenchmarkEncode(b *testing.B) {
	e := sample()
	b.Run("AppendMsgpack", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		b.ReportAllocs()
		for b.Loop() {
			buf = e.AppendMsgpack(buf[:0])
		}
	})
	b.Run("baseline-msgpack.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = msgpack.Marshal(&e)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	e := sample()
	buf := e.Marshal()
	b.ReportAllocs()
	var got Event
	for b.Loop() {
		got.Reset()
		_ = Unmarshal(buf, &got)
	}
}
