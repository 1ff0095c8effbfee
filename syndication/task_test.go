package syndication

import (
	"slices"
	"testing"
)

// A task message names one user (as every version wrote it) or a batch;
// each user comes out once, at its highest version, in first-seen order.
func TestTaskDecode(t *testing.T) {
	for _, c := range []struct {
		name string
		msg  string
		want []taskUser
		ok   bool
	}{
		{"one user", `{"u":"alice","v":7}`, []taskUser{{"alice", 7}}, true},
		{"a resync, no version", `{"u":"alice"}`, []taskUser{{"alice", 0}}, true},
		{"a batch", `{"b":[{"u":"bob","v":3},{"u":"alice","v":5},{"u":"bob","v":9},{"u":"bob","v":4}]}`,
			[]taskUser{{"bob", 9}, {"alice", 5}}, true},
		{"an invalid id spoils the batch", `{"b":[{"u":"bob","v":3},{"u":"a.b","v":5}]}`, nil, false},
		{"no user", `{"v":3}`, nil, false},
		{"not JSON", `u=alice`, nil, false},
	} {
		var tk task
		got, ok := tk.decode([]byte(c.msg))
		if ok != c.ok || !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v %v, want %v %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
