package decision

import "math"

// Spend is what a campaign has delivered: impressions, and their CPM prices
// summed in micros (Cost/1000 is money in micros of the account currency).
type Spend struct {
	Imps int64 `msgpack:"i"`
	Cost int64 `msgpack:"c"`
}

// Add returns s plus o.
func (s Spend) Add(o Spend) Spend { return Spend{s.Imps + o.Imps, s.Cost + o.Cost} }

// Sub returns s minus o.
func (s Spend) Sub(o Spend) Spend { return Spend{s.Imps - o.Imps, s.Cost - o.Cost} }

// Budget limits delivery; a zero amount means no limit. Money budgets are
// in the account currency, others in impressions.
type Budget struct {
	Money        bool
	Total, Daily float64
}

// Headroom is how many more impressions a campaign at ecpm (micros) may
// serve now, across every edge: what is left of the total budget, and of
// the daily budget as paced to frac of the day, plus a 1% margin (at least
// one impression) so delivery is not choppy.
func Headroom(b Budget, ecpm int64, today, total Spend, frac float64) int64 {
	room := int64(math.MaxInt64)
	imps := func(left float64, spent Spend) int64 {
		if b.Money {
			units := left*1e9 - float64(spent.Cost) // cost is CPM micros: money×1e9 per imp×1000
			if ecpm <= 0 {
				return 0
			}
			return int64(math.Floor(units / float64(ecpm)))
		}
		return int64(math.Floor(left)) - spent.Imps
	}
	if b.Total > 0 {
		room = min(room, imps(b.Total, total))
	}
	if b.Daily > 0 {
		one := 1.0
		if b.Money {
			one = float64(ecpm) / 1e9
		}
		allowed := min(b.Daily, b.Daily*frac+max(b.Daily/100, one))
		room = min(room, imps(allowed, today))
	}
	return max(room, 0)
}

// Claim is what one of edges live edges takes of room for its next
// interval: what it needs (about twice what it served in the last one), and
// at most its fair share, so edges claiming at the same instant cannot
// together take more than is left.
func Claim(room, edges, need int64) int64 {
	edges = max(edges, 1)
	return max(0, min((room+edges-1)/edges, need))
}
