package syndication

import "testing"

// What a lane knows survives only consecutive deliveries of its consumer:
// a gap means another worker had a task of the lane and may have written.
func TestLaneStatesForgetAfterAGap(t *testing.T) {
	k := newLaneStates()
	k.delivered(7)
	k.put("u1", state{Version: 3, Holds: true}, 11)
	for _, step := range []struct {
		seq  uint64
		want bool // u1 still known
	}{
		{8, true},   // the next delivery: this lane had every one since
		{9, true},   //
		{11, false}, // 10 went to another worker
		{12, false}, // forgotten stays forgotten
	} {
		k.delivered(step.seq)
		if _, ok := k.get("u1"); ok != step.want {
			t.Fatalf("after delivery %d: u1 known %v, want %v", step.seq, ok, step.want)
		}
	}
	k.put("u2", state{Version: 1}, 4)
	k.delivered(0) // metadata unreadable: nothing can be trusted
	if _, ok := k.get("u2"); ok {
		t.Fatal("u2 known after a delivery without a sequence")
	}
	k.delivered(1)
	k.put("u3", state{}, 0)
	k.forget("u3")
	if _, ok := k.get("u3"); ok {
		t.Fatal("u3 known after forget")
	}
}

func TestLaneStatesBounded(t *testing.T) {
	k := newLaneStates()
	k.delivered(1)
	for i := range laneStatesMax + 10 {
		k.put(string(rune('a'+i%26))+string(rune(i)), state{}, uint64(i+1))
	}
	if len(k.m) != laneStatesMax {
		t.Fatalf("%d users known, want at most %d", len(k.m), laneStatesMax)
	}
}
