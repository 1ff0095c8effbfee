package stats

import (
	"errors"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/privacy"
	"github.com/adsyn/adsyn/internal/stats/tally"
)

func TestOptionsValidate(t *testing.T) {
	bad := map[string]AggregatorOption{
		"partitions 0":    WithPartitions(0),
		"partitions 2000": WithPartitions(2000),
		"nil clock":       WithClock(nil),
		"consumer name":   WithConsumer("a.b"),
		"flush 1ms":       WithFlush(time.Millisecond, 10),
		"flush events 0":  WithFlush(time.Second, 0),
		"ack wait 10ms":   WithAckWait(10*time.Millisecond, time.Second),
	}
	for name, o := range bad {
		if _, err := newConfig([]AggregatorOption{o}, AggregatorOption.aggregator); !errors.Is(err, ErrBadOption) {
			t.Errorf("%s: %v", name, err)
		}
	}
	c, err := newConfig([]AggregatorOption{WithPartitions(4), WithConsumer("x"), nil}, AggregatorOption.aggregator)
	if err != nil || c.partitions != 4 || c.consumer != "x" || c.log == nil || c.reg == nil {
		t.Errorf("%+v %v", c, err)
	}
	if _, err := New(nil); !errors.Is(err, ErrBadOption) {
		t.Errorf("nil JetStream: %v", err)
	}
}

// TestOptionTypes: each option goes to the constructors that read it, and
// to no other (the compiler refuses the rest).
func TestOptionTypes(t *testing.T) {
	table := []struct {
		name            string
		opt             any
		agg, handlerOpt bool
	}{
		{"WithLogger", WithLogger(nil), true, true},
		{"WithMetrics", WithMetrics(nil), true, true},
		{"WithPartitions", WithPartitions(1), true, true},
		{"WithClock", WithClock(time.Now), true, true},
		{"WithConsumer", WithConsumer("x"), true, false},
		{"WithStartSequence", WithStartSequence(1), true, false},
		{"WithFlush", WithFlush(time.Second, 1), true, false},
		{"WithAckWait", WithAckWait(time.Second, time.Second), true, false},
		{"WithCPM", WithCPM(nil), true, false},
		{"WithPrivacy", WithPrivacy(privacy.Options{}), false, true},
		{"WithCampaignOwner", WithCampaignOwner(nil), false, true},
		{"WithSiteOwner", WithSiteOwner(nil), false, true},
		{"WithCampaigns", WithCampaigns(nil), false, true},
		{"WithSites", WithSites(nil), false, true},
		{"WithTrackingNumbers", WithTrackingNumbers(nil), false, true},
	}
	for _, tt := range table {
		_, agg := tt.opt.(AggregatorOption)
		_, handler := tt.opt.(HandlerOption)
		if agg != tt.agg || handler != tt.handlerOpt {
			t.Errorf("%s: aggregator %v, handler %v; want %v, %v", tt.name, agg, handler, tt.agg, tt.handlerOpt)
		}
	}
}

func TestScopeDims(t *testing.T) {
	if !ScopeCampaign.Has(DimSite) || ScopeCampaign.Has(DimCampaign) || !ScopeCampaign.Has(DimCreative) {
		t.Error("campaign dimensions")
	}
	if ScopeSite.Has(DimSite) || !ScopeSite.Has(DimCampaign) || ScopeSite.Has(DimCreative) || !ScopeSite.Has(DimDevice) {
		t.Error("site dimensions")
	}
	for d := range tally.NumDims {
		if got, ok := ParseDim(d.String()); !ok || got != d {
			t.Errorf("%s", d)
		}
	}
}
