package audience

import (
	"cmp"
	"slices"
	"strings"
)

// Limits are the distinct values a breakdown keeps per site and hour; the
// values seen after the limit is reached count in Other. With MaxValue they
// bound a site-hour's breakdowns to about 50 KB whatever the traffic. A
// site's most frequent values are almost always among the first seen in an
// hour; a value that is not is still counted, in Other, never lost.
var Limits = [NumDimensions]int{
	Page: 100, Referrer: 50, UTMSource: 25, UTMCampaign: 25, Language: 25,
	Device: 8, Browser: 12, OS: 12, Country: 50, EventName: 50,
}

// OtherValue names Other in answers.
const OtherValue = "(other)"

// Breakdown counts the values of one dimension exactly, up to a limit of
// distinct values.
type Breakdown struct {
	Counts map[string]uint64 `msgpack:"c,omitempty" json:"counts,omitempty"`
	Other  uint64            `msgpack:"o,omitempty" json:"other,omitempty"`
}

// Add counts n of value v; "" is no value and is not counted.
func (b *Breakdown) Add(v string, n uint64, limit int) {
	if v == "" || n == 0 {
		return
	}
	if c, ok := b.Counts[v]; ok {
		b.Counts[v] = c + n
		return
	}
	if len(b.Counts) >= limit {
		b.Other += n
		return
	}
	if b.Counts == nil {
		b.Counts = make(map[string]uint64)
	}
	b.Counts[strings.Clone(v)] = n // v may point into a message
}

// Merge adds o's counts to b, without a limit: a range's breakdown holds
// every value its hours kept.
func (b *Breakdown) Merge(o *Breakdown) {
	for v, n := range o.Counts {
		if b.Counts == nil {
			b.Counts = make(map[string]uint64, len(o.Counts))
		}
		b.Counts[v] += n
	}
	b.Other += o.Other
}

// Count is one value's count in an answer.
type Count struct {
	Value string `json:"value"`
	Count uint64 `json:"count"`
}

// Top returns the k most frequent values, most frequent first (ties by
// value), then Other holding the rest (omitted when nothing is in it).
func (b *Breakdown) Top(k int) []Count {
	out := b.sorted()
	other := b.Other
	if len(out) > k {
		for _, c := range out[k:] {
			other += c.Count
		}
		out = out[:k]
	}
	if other > 0 {
		out = append(out, Count{OtherValue, other})
	}
	return out
}

// sorted returns the counted values, most frequent first, ties by value.
func (b *Breakdown) sorted() []Count {
	out := make([]Count, 0, len(b.Counts)+1)
	for v, n := range b.Counts {
		out = append(out, Count{v, n})
	}
	slices.SortFunc(out, func(x, y Count) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return cmp.Compare(x.Value, y.Value)
	})
	return out
}

// Total is the sum of every count, Other included.
func (b *Breakdown) Total() uint64 {
	t := b.Other
	for _, n := range b.Counts {
		t += n
	}
	return t
}
