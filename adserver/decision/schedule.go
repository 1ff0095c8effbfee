package decision

import (
	"math"
	"time"
)

// DayMS is a day in milliseconds.
const DayMS = 24 * 60 * 60 * 1000

const hourMS = 60 * 60 * 1000

// Schedule is when a campaign delivers: its flight and the open hours of
// its day parts, in its time zone.
type Schedule struct {
	Start, End int64          // unix ms; End is exclusive, math.MaxInt64 when open
	Hours      *[7]uint32     // by time.Weekday, bit h open hour h; nil: every hour
	Loc        *time.Location // of Hours; nil: UTC
}

// Always is a schedule with no flight limits and no day parts.
func Always() Schedule { return Schedule{Start: math.MinInt64, End: math.MaxInt64} }

// DayPart opens hours From (0-23) to To (1-24, exclusive) on Days; no days: every day.
type DayPart struct {
	Days     []time.Weekday
	From, To int
}

// Hours is the weekly open hours of parts.
func Hours(parts []DayPart) *[7]uint32 {
	var h [7]uint32
	for _, p := range parts {
		var mask uint32
		for hr := max(p.From, 0); hr < p.To && hr < 24; hr++ {
			mask |= 1 << hr
		}
		if len(p.Days) == 0 {
			for d := range h {
				h[d] |= mask
			}
			continue
		}
		for _, d := range p.Days {
			h[d] |= mask
		}
	}
	return &h
}

// Flight says whether now (unix ms) is within the flight: Serve,
// NotStarted or Ended.
func (s *Schedule) Flight(now int64) Block {
	switch {
	case now < s.Start:
		return NotStarted
	case now >= s.End:
		return Ended
	}
	return Serve
}

// Open reports whether now (unix ms) is an open hour of the day parts.
func (s *Schedule) Open(now int64) bool {
	if s.Hours == nil {
		return true
	}
	loc := s.Loc
	if loc == nil {
		loc = time.UTC
	}
	t := time.UnixMilli(now).In(loc)
	return s.Hours[t.Weekday()]&(1<<uint(t.Hour())) != 0
}

// NeverOpen reports day parts that open no hour at all.
func (s *Schedule) NeverOpen() bool { return s.Hours != nil && *s.Hours == [7]uint32{} }

// DayFraction is the share of today's open delivery time (the UTC day,
// within the flight and the day parts) that has passed at nowMS.
func (s *Schedule) DayFraction(nowMS int64) float64 {
	dayStart := nowMS / DayMS * DayMS
	from, to := max(dayStart, s.Start), min(dayStart+DayMS, s.End)
	if to <= from {
		return 1
	}
	if s.Hours == nil {
		return clamp01(float64(nowMS-from) / float64(to-from))
	}
	var open, passed int64
	for t := from; t < to; {
		next := min((t/hourMS+1)*hourMS, to)
		if s.Open(t) {
			open += next - t
			if nowMS > t {
				passed += min(nowMS, next) - t
			}
		}
		t = next
	}
	if open == 0 {
		return 1
	}
	return clamp01(float64(passed) / float64(open))
}

func clamp01(f float64) float64 { return max(0, min(1, f)) }
