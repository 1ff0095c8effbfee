package syndication_test

import (
	"slices"
	"testing"
	"time"

	"github.com/adsyn/adsyn/syndication"
)

// TestOptionsPerConstructor: each option is taken by exactly the
// constructors that read it; any other refuses it at compile time.
func TestOptionsPerConstructor(t *testing.T) {
	const R, W = "registry", "worker"
	for _, tc := range []struct {
		name string
		opt  any
		for_ []string
	}{
		{"WithLogger", syndication.WithLogger(nil), []string{R, W}},
		{"WithMetrics", syndication.WithMetrics(nil), []string{W}},
		{"WithProfiles", syndication.WithProfiles(nil), []string{R, W}},
		{"WithKeyring", syndication.WithKeyring(nil), []string{R, W}},
		{"WithTimeout", syndication.WithTimeout(time.Second), []string{R, W}},
		{"WithTakeover", syndication.WithTakeover(time.Second), []string{R, W}},
		{"WithPrivatePartners", syndication.WithPrivatePartners(true), []string{R, W}},
		{"WithBackoff", syndication.WithBackoff(syndication.DefaultBackoff), []string{W}},
		{"WithPublicURL", syndication.WithPublicURL("https://api.example.test"), []string{W}},
		{"WithShards", syndication.WithShards(1), []string{R}},
		{"WithReplicas", syndication.WithReplicas(1), []string{R}},
	} {
		var got []string
		if _, ok := tc.opt.(syndication.RegistryOption); ok {
			got = append(got, R)
		}
		if _, ok := tc.opt.(syndication.WorkerOption); ok {
			got = append(got, W)
		}
		if !slices.Equal(got, tc.for_) {
			t.Errorf("%s is taken by %v, want %v", tc.name, got, tc.for_)
		}
	}
}
