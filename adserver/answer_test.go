package adserver

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/adsyn/adsyn/internal/event"
)

// TestManySlotsOneAnswer: a page's slots in one request: one ad per slot,
// each counted once, the document head sent once, and the answer smaller
// than the slots asked one by one.
func TestManySlotsOneAnswer(t *testing.T) {
	snap := testSnap(camp("c1"), camp("c2", func(c *Campaign) { c.Name = "leaderboard" }))
	env := newEdgeEnv(t, snap, WithConsent(allowAll))
	res, body := get(t, env.base+"/ad?site=s1&slots=top,side&fmt=json")
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	var ans struct {
		Head string `json:"head"`
		Ads  []struct {
			Slot, Campaign, HTML, Imp string
		} `json:"ads"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Head != docHead || len(ans.Ads) != 2 {
		t.Fatalf("head %q, %d ads", ans.Head, len(ans.Ads))
	}
	got := map[string]string{}
	for _, a := range ans.Ads {
		got[a.Slot] = a.Campaign
		if strings.Contains(a.HTML, "<style>") || !strings.Contains(a.HTML, "/click?t=") || a.Imp == "" {
			t.Errorf("slot %s: html %q", a.Slot, a.HTML)
		}
	}
	if got["top"] != "c2" || got["side"] != "c1" {
		t.Errorf("ads by slot %v", got)
	}
	imps := env.pub.kinds(event.KindImpression)
	if len(imps) != 2 || imps[0].Slot == imps[1].Slot {
		t.Fatalf("%d impressions: %+v", len(imps), imps)
	}
	_, one := get(t, env.base+"/ad?site=s1&slot=top&fmt=json")
	_, two := get(t, env.base+"/ad?site=s1&slot=side&fmt=json")
	if len(body) > len(one)+len(two)-len(jsonDocHead)+64 { // the head once, and the slot names
		t.Errorf("one answer of %d bytes, two of %d", len(body), len(one)+len(two))
	}
	t.Logf("two slots: %d bytes in one answer, %d asked one by one", len(body), len(one)+len(two))

	for _, bad := range []string{"slots=top,top", "slots=a,b,c,d,e,f,g,h,i", "slots=top,", "slots=top&slot=side", "slots=top&fmt=html"} {
		if res, _ := get(t, env.base+"/ad?site=s1&"+bad); res.StatusCode != 400 {
			t.Errorf("%s: %d", bad, res.StatusCode)
		}
	}
	if res, _ := get(t, env.base+"/ad?site=s1&slots=nowhere&fmt=json"); res.StatusCode != 204 {
		t.Errorf("no ad for any slot: %d", res.StatusCode)
	}
}
