package stats

import (
	"errors"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/stats/tally"
)

func TestOptionsValidate(t *testing.T) {
	bad := map[string]Option{
		"partitions 0":    WithPartitions(0),
		"partitions 2000": WithPartitions(2000),
		"nil clock":       WithClock(nil),
		"consumer name":   WithConsumer("a.b"),
		"flush 1ms":       WithFlush(time.Millisecond, 10),
		"flush events 0":  WithFlush(time.Second, 0),
		"ack wait 10ms":   WithAckWait(10*time.Millisecond, time.Second),
	}
	for name, o := range bad {
		if _, err := newConfig([]Option{o}); !errors.Is(err, ErrBadOption) {
			t.Errorf("%s: %v", name, err)
		}
	}
	c, err := newConfig([]Option{WithPartitions(4), WithConsumer("x"), nil})
	if err != nil || c.partitions != 4 || c.consumer != "x" || c.log == nil || c.reg == nil {
		t.Errorf("%+v %v", c, err)
	}
	if _, err := New(nil); !errors.Is(err, ErrBadOption) {
		t.Errorf("nil JetStream: %v", err)
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
