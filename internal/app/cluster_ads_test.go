package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/adserver"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/stats"
	"github.com/adsyn/adsyn/segments"
)

const (
	capCount   = 3  // the capped campaign's impressions per visitor and day
	budgetImps = 40 // the budgeted campaign's total impressions
	// overshoot is what edges claiming at the same instant may serve past a
	// budget ("a few impressions", adserver.Pacer).
	overshoot = 4
)

// seedAds stores a site with a campaign capped per visitor, another with a
// total budget, and a house ad for when neither may serve.
func (c *cluster) seedAds(t *testing.T, ctx context.Context) {
	t.Helper()
	st, err := adserver.NewStore(ctx, c.conn.JS)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, a := range []*adserver.Advertiser{{ID: "adv", Name: "Advertiser"}, {ID: "house", Name: "House"}} {
		if err := st.PutAdvertiser(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PutSite(ctx, &adserver.Site{ID: "ads", Publisher: "pub", Name: "Ads",
		Slots: []adserver.Slot{{ID: "capped", Sizes: []string{"300x250"}}, {ID: "paced", Sizes: []string{"300x250"}}}}); err != nil {
		t.Fatal(err)
	}
	for _, cp := range []*adserver.Campaign{
		{ID: "capped", Advertiser: "adv", Name: "Capped", Start: start, Priority: 4, CPM: 3,
			Caps:      []adserver.FreqCap{{Count: capCount, Window: adserver.Duration(24 * time.Hour)}},
			Targeting: adserver.Targeting{Slots: adserver.List{Include: []string{"ads/capped"}}}},
		{ID: "paced", Advertiser: "adv", Name: "Paced", Start: start, Priority: 4, CPM: 3,
			Budget:    adserver.Budget{Unit: adserver.Impressions, Total: budgetImps},
			Targeting: adserver.Targeting{Slots: adserver.List{Include: []string{"ads/paced"}}}},
		{ID: "house", Advertiser: "house", Name: "House", Start: start, Priority: 16},
	} {
		if err := st.PutCampaign(ctx, cp); err != nil {
			t.Fatal(err)
		}
		cr := &adserver.Creative{ID: cp.ID + "-cr", Advertiser: cp.Advertiser, Campaign: cp.ID, Type: adserver.Image,
			Sizes: []string{"300x250"}, Landing: "https://example.com/" + cp.ID, Content: adserver.Content{Image: "https://example.com/i.png"}}
		// Right after its campaign: the check that the campaign exists must
		// read the write just made, whichever replica answers (leader reads).
		if err := st.PutCreative(ctx, cr); err != nil {
			t.Fatal(err)
		}
	}
}

// ad asks edge e for an ad in slot as visitor (none: no cookie) and
// returns the campaign served, "" for none; it counts what is served.
func (c *cluster) ad(t *testing.T, e int, slot, visitor string) string {
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.SetRequestURI("http://" + c.edges[e].EdgeAddr() + "/ad?site=ads&slot=" + slot)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36")
	if visitor != "" {
		req.Header.Set("Cookie", "uid="+visitor)
	}
	if err := fasthttp.DoTimeout(req, res, 10*time.Second); err != nil {
		t.Errorf("/ad: %v", err)
		return ""
	}
	switch res.StatusCode() {
	case 204:
		return ""
	case 200:
		c.ads.Add(1)
		var a struct{ Campaign string }
		if err := json.Unmarshal(res.Body(), &a); err != nil {
			t.Errorf("/ad: %v: %s", err, res.Body())
		}
		return a.Campaign
	}
	t.Errorf("/ad: %d %s", res.StatusCode(), res.Body())
	return ""
}

// capsAndBudgets checks that a visitor capped at capCount sees at most that
// many across both edges, and that the two edges together serve the budget
// and no more (but the pacer's few).
func (c *cluster) capsAndBudgets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c.seedAds(t, ctx)
	for e := range c.edges {
		waitFor(t, 20*time.Second, "the campaigns live on both edges", func() bool { return c.ad(t, e, "capped", "") == "capped" })
	}
	kv, err := c.conn.JS.KeyValue(ctx, bus.BucketSegments)
	if err != nil {
		t.Fatal(err)
	}
	// shownIn is how many impressions of campaign the visitor's record holds.
	shownIn := func(visitor, campaign string) int {
		e, err := kv.Get(ctx, visitor)
		if err != nil {
			return 0
		}
		var r segments.Record
		if segments.DecodeRecord(e.Value(), &r) != nil {
			return 0
		}
		for _, cp := range r.Caps {
			if cp.Campaign == campaign {
				return len(cp.Times)
			}
		}
		return 0
	}

	// Each visitor asks the two edges in turn, six times as often as the
	// cap. A visitor's next request waits until the builders counted the
	// last impression, as a person's next page would come later: the cap is
	// held by the builders' records, which both edges read. An edge that
	// cannot read the record within --ad-record-wait (1ms) leaves the capped
	// campaign out (failing closed), so a few asks may miss it; the later
	// ones find the record cached.
	const visitors = 8
	shown := make([]int, visitors)
	var wg sync.WaitGroup
	for v := range visitors {
		wg.Go(func() {
			visitor := fmt.Sprintf("capvisitor-%011d", v)
			for i := range 6 * capCount {
				if c.ad(t, i%2, "capped", visitor) != "capped" {
					continue
				}
				shown[v]++
				n := shown[v]
				deadline := time.Now().Add(20 * time.Second)
				for shownIn(visitor, "capped") < n && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("caps: %d visitors asked both edges in turn %d times each; the campaign capped at %d was shown %v", visitors, 6*capCount, capCount, shown)
	for v, n := range shown {
		if n != capCount {
			t.Fatalf("visitor %d saw the campaign capped at %d %d times across the two edges", v, capCount, n)
		}
	}

	// The budget: four senders ask both edges at once until the budget is
	// spent and each has asked 50 more times.
	var served atomic.Int64
	var after [4]atomic.Int64
	for s := range 4 {
		wg.Go(func() {
			for i := 0; after[s].Load() < 50 && i < 5000; i++ {
				if c.ad(t, (s+i)%2, "paced", "") == "paced" {
					served.Add(1)
				}
				if served.Load() >= budgetImps {
					after[s].Add(1)
				}
			}
		})
	}
	wg.Wait()
	var counted stats.Counters
	waitFor(t, 30*time.Second, "the budgeted campaign's impressions counted", func() bool {
		counted = statTotals(t, ctx, c.conn.JS, stats.ScopeCampaign, "paced")
		return counted.Impressions >= served.Load()
	})
	t.Logf("budget: two edges served %d impressions of a total budget of %d; statistics count %d", served.Load(), budgetImps, counted.Impressions)
	if served.Load() < budgetImps || served.Load() > budgetImps+overshoot {
		t.Fatalf("the two edges served %d impressions of a budget of %d (at most %d over is allowed)", served.Load(), budgetImps, overshoot)
	}
	if counted.Impressions != served.Load() {
		t.Fatalf("statistics count %d impressions of the budgeted campaign; %d were served", counted.Impressions, served.Load())
	}
}
