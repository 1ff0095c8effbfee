//go:build !race

package event

import "testing"

func TestAppendMsgpackDoesNotAllocate(t *testing.T) {
	e := sample()
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = e.AppendMsgpack(buf[:0]) }); n != 0 {
		t.Fatalf("AppendMsgpack allocates %v times", n)
	}
}
