package decision

import (
	"math"
	"testing"
	"time"
)

// TestSplitmix: the reference outputs of splitmix64 for seed 1234567
// (Rosetta Code, "Pseudo-random numbers/Splitmix64") and seed 0.
func TestSplitmix(t *testing.T) {
	const gamma = 0x9e3779b97f4a7c15
	state := uint64(1234567)
	for i, want := range []uint64{6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821} {
		if got := Splitmix(state); got != want {
			t.Fatalf("output %d: %d, want %d", i, got, want)
		}
		state += gamma
	}
	if got := Splitmix(0); got != 0xe220a8397b1dcdaf {
		t.Fatalf("seed 0: %#x", got)
	}
}

// TestDrawWeights: over many seeds, each candidate wins in proportion to
// its weight (1:2:7 here), and the first offer always leads.
func TestDrawWeights(t *testing.T) {
	weights := []uint64{1, 2, 7}
	wins := make([]int, len(weights))
	const n = 100000
	for seed := range uint64(n) {
		d := NewDraw(Splitmix(seed))
		best := -1
		for i, w := range weights {
			if d.Offer(w) {
				best = i
			} else if i == 0 {
				t.Fatal("the first offer did not lead")
			}
		}
		wins[best]++
	}
	for i, w := range weights {
		want := float64(n) * float64(w) / 10
		if got := float64(wins[i]); math.Abs(got-want) > 0.03*n {
			t.Errorf("weight %d won %d of %d, want about %.0f", w, wins[i], n, want)
		}
	}
}

var wed = time.Date(2025, 6, 4, 0, 0, 0, 0, time.UTC) // a Wednesday

func TestSchedule(t *testing.T) {
	at := func(h, m int) int64 {
		return wed.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute).UnixMilli()
	}
	nineToFive := Hours([]DayPart{{Days: []time.Weekday{time.Wednesday}, From: 9, To: 17}})
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		s      Schedule
		now    int64
		flight Block
		open   bool
		frac   float64
	}{
		{"always, noon", Always(), at(12, 0), Serve, true, 0.5},
		{"before the flight", Schedule{Start: at(13, 0), End: math.MaxInt64}, at(12, 0), NotStarted, true, 0},
		{"flight ends at 18:00", Schedule{Start: at(6, 0), End: at(18, 0)}, at(12, 0), Serve, true, 0.5},
		{"at the end", Schedule{Start: at(6, 0), End: at(18, 0)}, at(18, 0), Ended, true, 1},
		{"9 to 17, at noon", Schedule{Start: 0, End: math.MaxInt64, Hours: nineToFive}, at(12, 0), Serve, true, 3.0 / 8},
		{"9 to 17, at 8:30", Schedule{Start: 0, End: math.MaxInt64, Hours: nineToFive}, at(8, 30), Serve, false, 0},
		{"9 to 17, at 17:00", Schedule{Start: 0, End: math.MaxInt64, Hours: nineToFive}, at(17, 0), Serve, false, 1},
		{"9 to 17 Berlin (UTC+2), at 12:00 UTC", Schedule{Start: 0, End: math.MaxInt64, Hours: nineToFive, Loc: berlin}, at(12, 0), Serve, true, 5.0 / 8},
		{"9 to 17 Berlin, at 15:30 UTC", Schedule{Start: 0, End: math.MaxInt64, Hours: nineToFive, Loc: berlin}, at(15, 30), Serve, false, 1},
		{"no open hour today", Schedule{Start: 0, End: math.MaxInt64, Hours: Hours([]DayPart{{Days: []time.Weekday{time.Monday}, From: 0, To: 24}})}, at(12, 0), Serve, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Flight(tc.now); got != tc.flight {
				t.Errorf("Flight = %d, want %d", got, tc.flight)
			}
			if got := tc.s.Open(tc.now); got != tc.open {
				t.Errorf("Open = %v, want %v", got, tc.open)
			}
			if got := tc.s.DayFraction(tc.now); math.Abs(got-tc.frac) > 1e-9 {
				t.Errorf("DayFraction = %v, want %v", got, tc.frac)
			}
		})
	}
	if !(&Schedule{Hours: Hours([]DayPart{{From: 5, To: 5}})}).NeverOpen() || (&Schedule{}).NeverOpen() {
		t.Error("NeverOpen")
	}
	if h := Hours([]DayPart{{From: 22, To: 24}}); h[time.Sunday] != 0xC00000 || h[time.Saturday] != 0xC00000 {
		t.Errorf("every day 22-24: %#x", h[time.Sunday])
	}
}

func TestCapReached(t *testing.T) {
	const now, hour, campaign = 10_000_000, 3_600_000, 42
	caps := []Cap{{Count: 3, Window: hour}, {Count: 5, Window: 24 * hour}}
	record := []int64{now - 2*hour, now - 30*60_000, now - 10*60_000} // two in the last hour
	for _, tc := range []struct {
		name   string
		times  []int64
		seen   int64
		recent []Impression
		want   int
	}{
		{"nothing yet", nil, 0, nil, -1},
		{"two in the hour", record, now - 60_000, nil, -1},
		{"and one on this edge since", record, now - 60_000, []Impression{{campaign, now - 1000}}, 0},
		{"this edge's, already in the record", record, now - 60_000, []Impression{{campaign, now - 10*60_000}}, -1},
		{"another campaign's", record, now - 60_000, []Impression{{7, now - 1000}}, -1},
		{"in the same millisecond as the record: counted again", record, now - 1000, []Impression{{campaign, now - 1000}}, 0},
		{"the daily cap", []int64{now - 20*hour, now - 10*hour, now - 5*hour, now - 2*hour}, now, []Impression{{campaign, now}}, 1},
	} {
		if got := CapReached(caps, now, tc.times, tc.seen, tc.recent, campaign); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestHeadroomAndClaim(t *testing.T) {
	const cpm2 = 2_000_000 // 2.00 in micros
	for _, tc := range []struct {
		name       string
		b          Budget
		today, all Spend
		frac       float64
		want       int64
	}{
		{"no budget", Budget{}, Spend{}, Spend{}, 0.5, math.MaxInt64},
		{"total impressions", Budget{Total: 100}, Spend{}, Spend{Imps: 60}, 0.5, 40},
		{"total spent", Budget{Total: 100}, Spend{}, Spend{Imps: 120}, 0.5, 0},
		{"daily paced at noon", Budget{Daily: 1000}, Spend{Imps: 400}, Spend{Imps: 400}, 0.5, 110},
		{"daily at end of day", Budget{Daily: 1000}, Spend{Imps: 990}, Spend{Imps: 990}, 1, 10},
		{"total money: 10.00 at 2.00 CPM is 5000", Budget{Money: true, Total: 10}, Spend{}, Spend{Imps: 2000, Cost: 2000 * cpm2}, 0.5, 3000},
		{"daily money paced", Budget{Money: true, Daily: 10}, Spend{}, Spend{}, 0.5, 2550},
	} {
		if got := Headroom(tc.b, cpm2, tc.today, tc.all, tc.frac); got != tc.want {
			t.Errorf("%s: Headroom = %d, want %d", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct{ room, edges, need, want int64 }{
		{100, 1, 10, 10}, {100, 2, 80, 50}, {101, 2, 80, 51}, {3, 4, 10, 1}, {0, 2, 10, 0}, {-5, 2, 10, 0}, {100, 0, 10, 10},
	} {
		if got := Claim(tc.room, tc.edges, tc.need); got != tc.want {
			t.Errorf("Claim(%d, %d, %d) = %d, want %d", tc.room, tc.edges, tc.need, got, tc.want)
		}
	}
	if s := (Spend{3, 30}).Add(Spend{1, 10}).Sub(Spend{2, 5}); s != (Spend{2, 35}) {
		t.Errorf("Add, Sub: %+v", s)
	}
}
