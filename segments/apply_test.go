package segments

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/adsyn/adsyn/segments/taxonomy"
)

const day = int64(24 * time.Hour / time.Millisecond)

func TestApplyDecay(t *testing.T) {
	p := DefaultPolicy()
	p.HalfLife = 10 * 24 * time.Hour
	t0 := int64(1_700_000_000_000)
	c := func(seq uint64, ts int64, w float64) change {
		return change{seq: seq, ts: ts, contribs: []taxonomy.Contribution{{Segment: "s", Weight: w, Rule: "r"}}}
	}
	var r Record
	p.apply(&r, []change{c(1, t0, 1), c(2, t0+10*day, 1)}, nil)
	if got := r.Segments[0].Score; math.Abs(got-1.5) > 1e-9 || r.Segments[0].At != t0+10*day {
		t.Errorf("score %v at %d, want 1.5 at +10d", got, r.Segments[0].At)
	}
	if d := r.Segments[0].Decayed(t0+20*day, p.HalfLife); math.Abs(d-0.75) > 1e-9 {
		t.Errorf("decayed %v, want 0.75", d)
	}
	// The order of contributions does not matter.
	var a, b Record
	cs := []change{c(1, t0, 1), c(2, t0+3*day, 0.5), c(3, t0+7*day, 2)}
	p.apply(&a, cs, nil)
	p.apply(&b, []change{cs[2], cs[0], cs[1]}, nil)
	if math.Abs(a.Segments[0].Score-b.Segments[0].Score) > 1e-9 || a.Segments[0].At != b.Segments[0].At {
		t.Errorf("order matters: %+v vs %+v", a.Segments[0], b.Segments[0])
	}
	// Scores that decay below MinScore go.
	var old Record
	p.apply(&old, []change{c(1, t0, 1)}, nil)
	p.apply(&old, []change{{seq: 2, ts: t0 + 100*day, lang: "en"}}, nil)
	if len(old.Segments) != 0 {
		t.Errorf("stale segment kept: %+v", old.Segments)
	}
}

func TestApplyBounds(t *testing.T) {
	p := DefaultPolicy()
	p.MaxSegments, p.MaxLangs, p.MaxCampaigns, p.MaxCapTimes, p.MaxApplied = 2, 2, 2, 3, 3
	t0 := int64(1_700_000_000_000)
	var r Record
	var cs []change
	for i, s := range []string{"c", "a", "b"} {
		cs = append(cs, change{seq: uint64(i + 1), ts: t0 + int64(i), contribs: []taxonomy.Contribution{{Segment: s, Weight: float64(i + 1)}}})
	}
	cs = append(cs,
		change{seq: 4, ts: t0 + 10, lang: "ru"}, change{seq: 5, ts: t0 + 11, lang: "en"}, change{seq: 6, ts: t0 + 12, lang: "de"}, change{seq: 7, ts: t0 + 13, lang: "en"},
	)
	for i := range 5 {
		cs = append(cs, change{seq: uint64(10 + i), ts: t0 + int64(20+i), campaign: "x"})
	}
	cs = append(cs, change{seq: 20, ts: t0 + 30, campaign: "y"}, change{seq: 21, ts: t0 + 31, campaign: "z"})
	p.apply(&r, cs, nil)
	ids := []string{}
	for _, s := range r.Segments {
		ids = append(ids, s.ID)
	}
	if !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("segments %v, want the two highest, sorted", ids)
	}
	if !slices.Equal(r.Langs, []string{"en", "de"}) {
		t.Errorf("langs %v", r.Langs)
	}
	if len(r.Caps) != 2 || r.Caps[0].Campaign != "y" || r.Caps[1].Campaign != "z" {
		t.Errorf("caps %+v, want the two most recent campaigns", r.Caps)
	}
	if !slices.Equal(r.Applied, []uint64{14, 20, 21}) {
		t.Errorf("applied %v", r.Applied)
	}
	// Impression times: ascending, the newest MaxCapTimes, within CapWindow.
	var f Record
	p.apply(&f, []change{{seq: 1, ts: t0 + 5, campaign: "x"}, {seq: 2, ts: t0 + 1, campaign: "x"}, {seq: 3, ts: t0 + 3, campaign: "x"}, {seq: 4, ts: t0 - 40*day, campaign: "x"}}, nil)
	if !slices.Equal(f.Caps[0].Times, []int64{t0 + 1, t0 + 3, t0 + 5}) {
		t.Errorf("times %v", f.Caps[0].Times)
	}
}

func TestApplyOnce(t *testing.T) {
	p := DefaultPolicy()
	t0 := int64(1_700_000_000_000)
	cs := []change{{seq: 7, ts: t0, lang: "ru"}, {seq: 7, ts: t0 + 1, lang: "ru"}, {seq: 8, ts: t0 + 2}}
	var r Record
	if n := p.apply(&r, cs, nil); n != 3 || r.Events != 3 {
		t.Fatalf("applied %d, events %d", n, r.Events)
	}
	// A redelivered message counts nothing.
	if n := p.apply(&r, cs[:2], nil); n != 0 || r.Events != 3 {
		t.Errorf("redelivery applied %d, events %d", n, r.Events)
	}
	// Events before an erasure count nothing.
	e := Record{Since: t0 + 1}
	if n := p.apply(&e, cs, nil); n != 1 {
		t.Errorf("applied %d events older than the erasure", 3-n)
	}
}

func TestApplySensitive(t *testing.T) {
	p := DefaultPolicy()
	var r Record
	p.apply(&r, []change{{seq: 1, ts: 5, lang: "ru", campaign: "c", sensitive: true}}, nil)
	if r.Events != 1 || len(r.Langs) != 0 || r.LastSeen != 0 || len(r.Segments) != 0 || len(r.Caps) != 1 {
		t.Errorf("a sensitive event left %+v", r)
	}
}

func TestApplyDropsRemovedSegments(t *testing.T) {
	p := DefaultPolicy()
	r := Record{Segments: []Score{{ID: "gone", Score: 5, At: 1}, {ID: "home", Score: 5, At: 1}}}
	p.apply(&r, []change{{seq: 1, ts: 2}}, taxonomy.Default())
	if len(r.Segments) != 1 || r.Segments[0].ID != "home" {
		t.Errorf("segments %+v", r.Segments)
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
	p := DefaultPolicy()
	p.HalfLife = 0
	if p.Validate() == nil {
		t.Error("zero half-life accepted")
	}
	if _, err := buildOptions([]BuilderOption{WithHalfLife(time.Second)}, BuilderOption.builder); err == nil {
		t.Error("WithHalfLife(1s) accepted")
	}
}

// The strings a record keeps are its own: an event's strings share one
// allocation, the whole event, and a cached record pointing into it would
// keep every event it learnt from alive.
func TestRecordKeepsNoEventBytes(t *testing.T) {
	ev := strings.Repeat("x", 4096) + "ru" + "camp-1"
	lang, campaign := ev[4096:4098], ev[4098:]
	within := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		base := uintptr(unsafe.Pointer(unsafe.StringData(ev)))
		return p >= base && p < base+uintptr(len(ev))
	}
	p := DefaultPolicy()
	var r Record
	p.apply(&r, []change{{seq: 1, ts: 1000, lang: lang, campaign: campaign}}, nil)
	if len(r.Langs) != 1 || r.Langs[0] != "ru" || within(r.Langs[0]) {
		t.Errorf("language %q kept inside the event's bytes", r.Langs)
	}
	// A language seen before moves to the front as the record's copy.
	p.apply(&r, []change{{seq: 2, ts: 2000, lang: "en"}, {seq: 3, ts: 3000, lang: lang}}, nil)
	if len(r.Langs) != 2 || r.Langs[0] != "ru" || within(r.Langs[0]) {
		t.Errorf("language %q kept inside the event's bytes after it came again", r.Langs)
	}
	if len(r.Caps) != 1 || r.Caps[0].Campaign != "camp-1" || within(r.Caps[0].Campaign) {
		t.Errorf("campaign %+v kept inside the event's bytes", r.Caps)
	}
}
