package adserver

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/privacy"
)

func TestCampaignValidate(t *testing.T) {
	ok := func() *Campaign {
		return &Campaign{ID: "c1", Advertiser: "a1", Name: "Spring", Start: start, CPM: 2}
	}
	tests := []struct {
		name    string
		mod     func(*Campaign)
		check   func(string) error
		wantErr error
		wantMsg string
	}{
		{"valid, defaults filled", func(*Campaign) {}, nil, nil, ""},
		{"bad id", func(c *Campaign) { c.ID = "a.b" }, nil, ErrInvalid, "id"},
		{"no name", func(c *Campaign) { c.Name = " " }, nil, ErrInvalid, "name is required"},
		{"no start", func(c *Campaign) { c.Start = time.Time{} }, nil, ErrInvalid, "start is required"},
		{"end before start", func(c *Campaign) { c.End = start.Add(-time.Hour) }, nil, ErrInvalid, "end must be after start"},
		{"priority", func(c *Campaign) { c.Priority = 17 }, nil, ErrInvalid, "priority"},
		{"negative cpm", func(c *Campaign) { c.CPM = -1 }, nil, ErrInvalid, "cpm"},
		{"budget unit", func(c *Campaign) { c.Budget = Budget{Daily: 10} }, nil, ErrInvalid, "budget.unit"},
		{"fractional impressions", func(c *Campaign) { c.Budget = Budget{Unit: Impressions, Daily: 1.5} }, nil, ErrInvalid, "whole"},
		{"daily over total", func(c *Campaign) { c.Budget = Budget{Unit: Money, Daily: 10, Total: 5} }, nil, ErrInvalid, "daily exceeds"},
		{"money without cpm", func(c *Campaign) { c.CPM = 0; c.Budget = Budget{Unit: Money, Total: 5} }, nil, ErrInvalid, "cpm above 0"},
		{"cap count", func(c *Campaign) { c.Caps = []FreqCap{{Count: 0, Window: Duration(time.Hour)}} }, nil, ErrInvalid, "count"},
		{"cap window", func(c *Campaign) { c.Caps = []FreqCap{{Count: 3, Window: Duration(time.Second)}} }, nil, ErrInvalid, "window"},
		{"day part hours", func(c *Campaign) { c.DayParts = []DayPart{{From: 10, To: 9}} }, nil, ErrInvalid, "day_parts[0]"},
		{"day part day", func(c *Campaign) { c.DayParts = []DayPart{{Days: []string{"monday"}, From: 1, To: 2}} }, nil, ErrInvalid, "monday"},
		{"timezone", func(c *Campaign) { c.Timezone = "Mars/Olympus" }, nil, ErrInvalid, "timezone"},
		{"language", func(c *Campaign) { c.Targeting.Languages.Include = []string{"german"} }, nil, ErrInvalid, "languages"},
		{"country", func(c *Campaign) { c.Targeting.Countries.Include = []string{"DEU"} }, nil, ErrInvalid, "countries"},
		{"region", func(c *Campaign) { c.Targeting.Countries.Include = []string{"de-by"} }, nil, nil, ""},
		{"device", func(c *Campaign) { c.Targeting.Devices.Include = []string{"fridge"} }, nil, ErrInvalid, "devices"},
		{"slot", func(c *Campaign) { c.Targeting.Slots.Include = []string{"side"} }, nil, ErrInvalid, "slots"},
		{"segment case", func(c *Campaign) { c.Targeting.Segments.Any = []string{"Cycling"} }, nil, ErrInvalid, "segment id"},
		// P1: a sensitive segment or category is refused, by the guard and by the taxonomy check.
		{"sensitive segment", func(c *Campaign) { c.Targeting.Segments.Any = []string{"cycling", "mental-health"} }, nil, ErrSensitive, "mental-health"},
		{"sensitive segment in none", func(c *Campaign) { c.Targeting.Segments.None = []string{"religion"} }, nil, ErrSensitive, "religion"},
		{"sensitive category", func(c *Campaign) { c.Targeting.Categories.Include = []string{"diabetes"} }, nil, ErrSensitive, "diabetes"},
		{"compound segment", func(c *Campaign) { c.Targeting.Segments.Any = []string{"hivtest"} }, nil, ErrSensitive, "hivtest"},
		{"compound category", func(c *Campaign) { c.Targeting.Categories.Include = []string{"gaydating"} }, nil, ErrSensitive, "gaydating"},
		{"transliterated category", func(c *Campaign) { c.Targeting.Categories.Include = []string{"psikhiatr"} }, nil, ErrSensitive, "psikhiatr"},
		{"punycode category", func(c *Campaign) { c.Targeting.Categories.Exclude = []string{"xn--b1am9b"} }, nil, ErrSensitive, "xn--b1am9b"},
		{"taxonomy check refuses", func(c *Campaign) { c.Targeting.Segments.All = []string{"seg-7"} },
			func(s string) error {
				if s == "seg-7" {
					return errors.New("segment seg-7 is in category health")
				}
				return nil
			}, ErrSensitive, "seg-7"},
		{"taxonomy check passes", func(c *Campaign) { c.Targeting.Segments.All = []string{"seg-8"} },
			func(string) error { return nil }, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.mod(c)
			err := c.Validate(tc.check)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if c.Priority != DefaultPriority || c.Weight != 1 || c.Status != Active {
					t.Fatalf("defaults not filled: %+v", c)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %v, want %v containing %q", err, tc.wantErr, tc.wantMsg)
			}
		})
	}
}

func TestCreativeAndSiteValidate(t *testing.T) {
	img := func() *Creative { return imageCreative("cr", "c1") }
	for name, tc := range map[string]struct {
		mod  func(*Creative)
		want string
	}{
		"valid":               {func(*Creative) {}, ""},
		"javascript landing":  {func(c *Creative) { c.Landing = "javascript:alert(1)" }, "landing"},
		"relative landing":    {func(c *Creative) { c.Landing = "/x" }, "landing"},
		"bad size":            {func(c *Creative) { c.Sizes = []string{"300X250"} }, "size"},
		"leading zero size":   {func(c *Creative) { c.Sizes = []string{"0300x250"} }, "size"},
		"no image":            {func(c *Creative) { c.Image = "" }, "image is required"},
		"data image":          {func(c *Creative) { c.Image = "data:image/png;base64,AAAA" }, ""},
		"html needs html":     {func(c *Creative) { c.Type = HTML }, "html is required"},
		"native needs title":  {func(c *Creative) { c.Type = Native; c.Sizes = nil }, "native.title"},
		"native ok":           {func(c *Creative) { c.Type = Native; c.Sizes = nil; c.Native = &NativeAd{Title: "t"} }, ""},
		"profile needs user":  {func(c *Creative) { c.Type = Profile }, "profile_user"},
		"profile user on img": {func(c *Creative) { c.ProfileUser = "u1" }, "only for profile"},
		"variant lang":        {func(c *Creative) { c.Variants = map[string]Variant{"DE": {}} }, "variant language"},
		"variant landing": {func(c *Creative) {
			c.Variants = map[string]Variant{"de": {Content: Content{Image: "https://example.com/de.png"}, Landing: "ftp://x"}}
		}, "variants.de.landing"},
		"unknown type": {func(c *Creative) { c.Type = "video" }, "type"},
	} {
		t.Run(name, func(t *testing.T) {
			c := img()
			tc.mod(c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	site := &Site{ID: "s1", Publisher: "p1", Name: "S", Slots: []Slot{{ID: "a", Sizes: []string{"300x250"}}, {ID: "a", Native: true}}}
	if err := site.Validate(); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate slot: %v", err)
	}
	site = &Site{ID: "s1", Publisher: "p1", Name: "S", Categories: []string{"Cancer-Support"}, Slots: []Slot{{ID: "a", Native: true}}}
	if err := site.Validate(); !errors.Is(err, ErrSensitive) {
		t.Fatalf("sensitive site category: %v", err)
	}
	for domains, want := range map[string]string{
		"pub.example":                        "",
		"WWW.Pub.Example.":                   "",
		"localhost":                          "",
		"xn--80ak6aa92e.example":             "",
		"https://pub.example":                "not a host name",
		"pub.example:8080":                   "not a host name",
		"pub.example/path":                   "not a host name",
		"*.pub.example":                      "not a host name",
		"192.0.2.1":                          "not a host name",
		"-pub.example":                       "not a host name",
		"pub..example":                       "not a host name",
		"":                                   "not a host name",
		strings.Repeat("a", 64) + ".example": "not a host name",
	} {
		site = &Site{ID: "s1", Publisher: "p1", Name: "S", Domains: []string{domains}, Slots: []Slot{{ID: "a", Native: true}}}
		err := site.Validate()
		if want == "" && (err != nil || site.Domains[0] != strings.TrimSuffix(strings.ToLower(domains), ".")) ||
			want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("domain %q: %v %v, want %q", domains, site.Domains, err, want)
		}
	}
	// A stored site whose older domain is no host name still loads.
	site = &Site{ID: "s1", Publisher: "p1", Name: "S", Domain: "https://old.example", Slots: []Slot{{ID: "a", Native: true}}}
	if err := site.Validate(); err != nil || len(site.Domains) != 0 {
		t.Errorf("older domain: %v %v", site.Domains, err)
	}
}

func TestCampaignJSON(t *testing.T) {
	in := `{"id":"c1","advertiser":"a1","name":"N","start":"2025-01-01T00:00:00Z","cpm":2.5,
		"budget":{"unit":"money","daily":100},"frequency_caps":[{"count":3,"window":"24h"}],
		"day_parts":[{"days":["mon","fri"],"from":9,"to":17}],"targeting":{"segments":{"any":["cycling"]},"countries":{"include":["de"]}}}`
	var c Campaign
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(nil); err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.Caps[0].Window) != 24*time.Hour || c.Targeting.Countries.Include[0] != "DE" {
		t.Fatalf("%+v", c)
	}
	out, _ := json.Marshal(&c)
	if !strings.Contains(string(out), `"window":"24h0m0s"`) || strings.Contains(string(out), `"end"`) {
		t.Fatalf("%s", out)
	}
}

func imageCreative(id, campaign string) *Creative {
	return &Creative{ID: id, Advertiser: "a1", Campaign: campaign, Type: Image, Sizes: []string{"300x250"},
		Landing: "https://example.com/", Content: Content{Image: "https://example.com/a.png"}}
}

// An id that events carry must reach the statistics, caps and budgets as
// it is: the privacy choke point itself (privacy.Scrubber, the outside
// oracle here) decides which ids it would rewrite, and exactly those are
// refused for campaigns, creatives, sites and slots.
func TestEventIDsPassTheChokePointUnchanged(t *testing.T) {
	scrub, err := privacy.New(privacy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var sc privacy.Scratch
	keeps := func(id string) bool {
		e := event.Event{Campaign: id}
		scrub.Scrub(&e, &sc)
		return e.Campaign == id
	}
	ids := []string{
		"c1", "summer2026", "archive-1", "spring-2026-05", "camp_123456", // kept
		"spring-2026-1234567", "c-20261206", "camp_0012345", "b21337106c73", // a phone-like run of digits
		"rehab-clinic", "sex-ed", "church-events", // a sensitive term
	}
	refused := 0
	for _, id := range ids {
		want := keeps(id)
		checks := map[string]error{
			"campaign":            (&Campaign{ID: id, Advertiser: "a1", Name: "N", Start: start, CPM: 2}).Validate(nil),
			"creative":            imageCreative(id, "c1").Validate(),
			"creative's campaign": imageCreative("cr1", id).Validate(),
			"site":                (&Site{ID: id, Publisher: "p1", Name: "S", Slots: []Slot{{ID: "a", Native: true}}}).Validate(),
			"slot":                (&Site{ID: "s1", Publisher: "p1", Name: "S", Slots: []Slot{{ID: id, Native: true}}}).Validate(),
		}
		for what, err := range checks {
			if got := err == nil; got != want {
				t.Errorf("%s id %q: accepted %v, but the choke point keeps it %v (%v)", what, id, got, want, err)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("%s id %q: %v is not ErrInvalid", what, id, err)
			}
		}
		if !want {
			refused++
		}
	}
	if refused != 7 {
		t.Errorf("the choke point rewrites %d of the ids, want the 7 listed as such", refused)
	}
}
