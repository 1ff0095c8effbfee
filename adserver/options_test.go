package adserver

import (
	"log/slog"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/cookie"
	"github.com/adsyn/adsyn/internal/metrics"
)

// TestOptionsPerConstructor: each option is taken by exactly the
// constructors that read it; any other refuses it at compile time.
func TestOptionsPerConstructor(t *testing.T) {
	const S, C, E, H = "store", "catalog", "edge", "handler"
	for _, tc := range []struct {
		name string
		opt  any
		for_ []string
	}{
		{"WithLogger", WithLogger(slog.Default()), []string{C, E, H}},
		{"WithMetrics", WithMetrics(metrics.NewRegistry()), []string{C, E, H}},
		{"WithClock", WithClock(time.Now), []string{S, C, E, H}},
		{"WithEdgeID", WithEdgeID("e1"), []string{C, H}},
		{"WithPaceInterval", WithPaceInterval(time.Second), []string{C, H}},
		{"WithTargetCheck", WithTargetCheck(nil), []string{S, C, H}},
		{"WithSegments", WithSegments(memRecords{}), []string{E, H}},
		{"WithCatalog", WithCatalog(nil), []string{H}},
		{"WithTokenKeys", WithTokenKeys(testKey), []string{E}},
		{"WithPublisher", WithPublisher(&recorder{}), []string{E}},
		{"WithCookies", WithCookies(&cookie.Policy{}), []string{E}},
		{"WithVisitorCeiling", WithVisitorCeiling(10), []string{E}},
		{"WithRecordWait", WithRecordWait(time.Millisecond), []string{E}},
		{"WithProfiles", WithProfiles(nil), []string{E}},
		{"WithBots", WithBots(true), []string{E}},
	} {
		_, s := tc.opt.(StoreOption)
		_, c := tc.opt.(CatalogOption)
		_, e := tc.opt.(EdgeOption)
		_, h := tc.opt.(HandlerOption)
		var got []string
		for _, x := range []struct {
			ok   bool
			name string
		}{{s, S}, {c, C}, {e, E}, {h, H}} {
			if x.ok {
				got = append(got, x.name)
			}
		}
		if len(got) != len(tc.for_) {
			t.Errorf("%s is taken by %v, want %v", tc.name, got, tc.for_)
			continue
		}
		for i := range got {
			if got[i] != tc.for_[i] {
				t.Errorf("%s is taken by %v, want %v", tc.name, got, tc.for_)
				break
			}
		}
	}
}

// TestOptionErrors: options check their input, whichever constructor gets them.
func TestOptionErrors(t *testing.T) {
	for name, err := range map[string]error{
		"edge": func() error {
			_, err := NewEdge(t.Context(), staticCatalog(Build(testSnap(), t0, nil)), WithTokenKeys([]byte("short")))
			return err
		}(),
		"ceiling": func() error {
			_, err := NewEdge(t.Context(), staticCatalog(Build(testSnap(), t0, nil)), WithTokenKeys(testKey), WithVisitorCeiling(-1))
			return err
		}(),
		"record wait": func() error {
			_, err := NewEdge(t.Context(), staticCatalog(Build(testSnap(), t0, nil)), WithTokenKeys(testKey), WithRecordWait(time.Hour))
			return err
		}(),
		"store clock": func() error { _, err := NewStore(t.Context(), nil, WithClock(nil)); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: bad option accepted", name)
		}
	}
}
