package consent

import "testing"

func TestEvaluate(t *testing.T) {
	good := []byte(mustEncode(t, validTC()))
	// measureOnly grants our vendor purpose 7 only.
	m := validTC()
	m.PurposesConsent = BitsOf(7)
	measureOnly := []byte(mustEncode(t, m))
	policy := Policy{VendorID: ourVendor}
	byDefault := Policy{VendorID: ourVendor, GDPRByDefault: true}
	outside := All.Without(LinkIdentity)
	const anonymous = 1<<Contextual | 1<<Measure

	tests := []struct {
		name string
		s    Signals
		p    Policy
		want Set
	}{
		{"gdpr=1, consent", Signals{GDPRApplies: 1, TCString: good}, policy, tcfAll},
		{"gdpr=1, partial consent", Signals{GDPRApplies: 1, TCString: measureOnly}, policy, 1 << Measure},
		{"gdpr=1, no TC string", Signals{GDPRApplies: 1}, policy, 0},
		{"gdpr=1, invalid TC string", Signals{GDPRApplies: 1, TCString: []byte(official)}, policy, 0},
		{"gdpr=1, garbage", Signals{GDPRApplies: 1, TCString: []byte("not a TC string")}, policy, 0},
		{"gdpr=1, not our vendor", Signals{GDPRApplies: 1, TCString: good}, Policy{VendorID: ourVendor + 1}, 0},
		{"gdpr=1, no vendor id configured", Signals{GDPRApplies: 1, TCString: good}, Policy{}, 0},
		{"gdpr=1, GPC removes what follows the person", Signals{GDPRApplies: 1, TCString: good, GPC: true}, policy, anonymous},
		{"gdpr=1, opt-out cookie", Signals{GDPRApplies: 1, TCString: good, OptOut: true}, policy, anonymous},
		{"region overrides gdpr=0", Signals{GDPRApplies: 0, InRegion: true}, policy, 0},
		{"region with consent", Signals{GDPRApplies: 0, InRegion: true, TCString: good}, policy, tcfAll},
		{"region, unknown scope", Signals{GDPRApplies: -1, InRegion: true, TCString: measureOnly}, policy, 1 << Measure},
		{"unknown, GDPR by default, no string", Signals{GDPRApplies: -1}, byDefault, 0},
		{"unknown, GDPR by default, consent", Signals{GDPRApplies: -1, TCString: good}, byDefault, tcfAll},
		{"unknown, not GDPR by default", Signals{GDPRApplies: -1}, policy, outside},
		{"unknown, not by default, GPC", Signals{GDPRApplies: -1, GPC: true}, policy, anonymous},
		{"out-of-range gdpr value is unknown", Signals{GDPRApplies: 7}, byDefault, 0},
		{"out-of-range gdpr value is unknown, not by default", Signals{GDPRApplies: 7}, policy, outside},
		{"gdpr=0", Signals{GDPRApplies: 0}, byDefault, outside},
		{"gdpr=0 ignores the TC string", Signals{GDPRApplies: 0, TCString: measureOnly}, policy, outside},
		{"gdpr=0, GPC", Signals{GDPRApplies: 0, GPC: true}, policy, anonymous},
		{"gdpr=0, opt-out cookie", Signals{GDPRApplies: 0, OptOut: true}, policy, anonymous},
		{"gdpr=0, both", Signals{GDPRApplies: 0, GPC: true, OptOut: true}, policy, anonymous},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(tt.s, tt.p)
			if got != tt.want {
				t.Errorf("Evaluate = %v, want %v", got.Names(), tt.want.Names())
			}
			if got.Allow(LinkIdentity) {
				t.Error("Evaluate granted LinkIdentity")
			}
		})
	}
}

func TestGPC(t *testing.T) {
	for in, want := range map[string]bool{"1": true, "": false, "0": false, " 1": false, "1 ": false, "true": false, "11": false} {
		if got := GPC([]byte(in)); got != want {
			t.Errorf("GPC(%q) = %t, want %t", in, got, want)
		}
	}
	if GPC(nil) {
		t.Error("GPC(nil) = true")
	}
}

func TestOptedOut(t *testing.T) {
	for in, want := range map[string]bool{"1": true, "": false, "0": false, "yes": false, "1;": false} {
		if got := OptedOut([]byte(in)); got != want {
			t.Errorf("OptedOut(%q) = %t, want %t", in, got, want)
		}
	}
}

func TestParseGDPR(t *testing.T) {
	for in, want := range map[string]int8{"1": 1, "0": 0, "": -1, "2": -1, "true": -1, "${GDPR}": -1, "01": -1} {
		if got := ParseGDPR([]byte(in)); got != want {
			t.Errorf("ParseGDPR(%q) = %d, want %d", in, got, want)
		}
	}
}
