package audience

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/adsyn/adsyn/internal/event"
)

func TestValues(t *testing.T) {
	e := event.Event{Kind: event.KindPageview,
		URL:      "https://www.pub.example/plumbing/taps?utm_source=news%20letter&utm_campaign=spring&x=1#top",
		Referrer: "https://www.search.example/results",
		Lang:     "ru", Country: "DE", Device: event.Device{Type: "mobile", OS: "Android", Browser: "Chrome"}}
	var v [NumDimensions]string
	Values(&e, &v)
	want := [NumDimensions]string{"/plumbing/taps", "search.example", "news letter", "spring", "ru", "mobile", "Chrome", "Android", "DE", ""}
	if v != want {
		t.Errorf("got  %q\nwant %q", v, want)
	}
	// Navigation within the site is no referrer; the root is "/".
	e = event.Event{Kind: event.KindCustom, Name: "signup", URL: "https://pub.example", Referrer: "https://www.pub.example/a"}
	Values(&e, &v)
	if v[Page] != "/" || v[Referrer] != "" || v[EventName] != "signup" {
		t.Errorf("%q", v)
	}
	long := strings.Repeat("я", 100) // 200 bytes
	e = event.Event{URL: "https://p.example/" + long}
	Values(&e, &v)
	if len(v[Page]) > MaxValue || !strings.HasPrefix("/"+long, v[Page]) || strings.ToValidUTF8(v[Page], "") != v[Page] {
		t.Errorf("cut %d bytes: %q", len(v[Page]), v[Page])
	}
}

func TestBreakdownIsBoundedAndExact(t *testing.T) {
	var b Breakdown
	for i := range 10 {
		b.Add(fmt.Sprint("v", i), uint64(i+1), 4) // v0..v3 kept; v4..v9 in Other
	}
	b.Add("v0", 10, 4)
	b.Add("", 5, 4)
	if len(b.Counts) != 4 || b.Counts["v0"] != 11 || b.Other != 5+6+7+8+9+10 || b.Total() != 11+2+3+4+45 {
		t.Fatalf("%+v total %d", b, b.Total())
	}
	got := b.Top(2)
	want := []Count{{"v0", 11}, {"v3", 4}, {OtherValue, 2 + 3 + 45}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("top: %v, want %v", got, want)
	}
}

// TestVisitorsWithin2Percent: a million known visitors, counted in 24
// hours that merge into the day, then twice (a redelivery changes nothing).
func TestVisitorsWithin2Percent(t *testing.T) {
	const n = 1_000_000
	var day Hour
	for h := range 24 {
		var hour Hour
		for i := h; i < n; i += 24 {
			hour.Add(&event.Event{Kind: event.KindPageview, Visitor: fmt.Sprintf("visitor-%07d", i)})
		}
		if err := day.Merge(&hour); err != nil {
			t.Fatal(err)
		}
		if err := day.Merge(&hour); err != nil {
			t.Fatal(err)
		}
	}
	est := day.Visitors.Estimate()
	errPct := 100 * math.Abs(float64(est)-n) / n
	t.Logf("%d visitors estimated as %d: error %.2f%%", n, est, errPct)
	if errPct > 2 {
		t.Errorf("error %.2f%% over 2%%", errPct)
	}
	if day.Pageviews != 2*n {
		t.Errorf("pageviews %d", day.Pageviews)
	}
}

// TestHourIsBounded fills every breakdown past its limit with the longest
// values and a million visitors: the encoded hour stays under MaxHourBytes,
// and decodes to the same figures.
func TestHourIsBounded(t *testing.T) {
	var h Hour
	pad := strings.Repeat("x", MaxValue)
	for i := range 5000 {
		s := fmt.Sprintf("%05d%s", i, pad)
		e := event.Event{Kind: event.KindPageview, Visitor: fmt.Sprint("v", i*997),
			URL: "https://p.example/" + s + "?utm_source=" + s + "&utm_campaign=" + s, Referrer: "https://" + s[:60] + ".example/",
			Lang: s, Country: s, Device: event.Device{Type: s, OS: s, Browser: s}}
		h.Add(&e)
		h.Add(&event.Event{Kind: event.KindCustom, Name: s})
	}
	for i := range 1_000_000 {
		h.Visitors.Add(fmt.Sprint("w", i))
	}
	b, err := msgpack.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a full site-hour: %d bytes (bound %d)", len(b), MaxHourBytes)
	if len(b) > MaxHourBytes {
		t.Fatalf("%d bytes over the bound %d", len(b), MaxHourBytes)
	}
	var back Hour
	if err := msgpack.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Pageviews != h.Pageviews || back.Events != h.Events || back.Visitors.Estimate() != h.Visitors.Estimate() ||
		back.Breakdowns[Page].Total() != 5000 || back.Breakdowns[EventName].Other != 5000-uint64(Limits[EventName]) {
		t.Fatalf("decoded %d/%d/%d, pages %d", back.Pageviews, back.Events, back.Visitors.Estimate(), back.Breakdowns[Page].Total())
	}
}

func TestOnlyAudienceKindsCount(t *testing.T) {
	var h Hour
	for _, k := range []event.Kind{event.KindImpression, event.KindClick, event.KindConversion, event.KindViewable, event.KindCall} {
		if h.Add(&event.Event{Kind: k, Visitor: "v"}) {
			t.Errorf("%v counted", k)
		}
	}
	h.Add(&event.Event{Kind: event.KindSearch, Visitor: ""})
	if h.Searches != 1 || h.Visitors.Estimate() != 0 {
		t.Errorf("%+v", h)
	}
}

func FuzzValues(f *testing.F) {
	f.Add("https://a.example/x?utm_source=%zz", "http://[::1]:80/", "ru")
	f.Fuzz(func(t *testing.T, u, r, lang string) {
		var v [NumDimensions]string
		Values(&event.Event{Kind: event.KindPageview, URL: u, Referrer: r, Lang: lang}, &v)
		for d, s := range v {
			if len(s) > MaxValue {
				t.Fatalf("%s: %d bytes", Dimension(d), len(s))
			}
		}
	})
}
