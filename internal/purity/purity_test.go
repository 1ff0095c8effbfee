// Package purity holds the pure cores of adsyn to their promise: no import,
// however indirect, of the network stack (fasthttp, nats, net, net/http), so
// they can be tested and reused on their own (DESIGN.md, "Dependency rules").
package purity

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// pure lists the packages that must stay pure.
var pure = []string{
	"github.com/adsyn/adsyn/adserver/decision",
	"github.com/adsyn/adsyn/internal/guard",
	"github.com/adsyn/adsyn/internal/ids",
	"github.com/adsyn/adsyn/internal/phone",
	"github.com/adsyn/adsyn/internal/stats/tally",
	"github.com/adsyn/adsyn/syndication/webhook",
	"github.com/adsyn/adsyn/segments/taxonomy",
	"github.com/adsyn/adsyn/internal/stats/audience",
}

func TestPureCores(t *testing.T) {
	for _, pkg := range pure {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, pkg) {
			t.Fatalf("go list did not list %s: %v", pkg, deps)
		}
		for _, d := range deps {
			if strings.Contains(d, "fasthttp") || strings.Contains(d, "nats-io") || d == "net" || d == "net/http" {
				t.Errorf("%s depends on %s", pkg, d)
			}
			// A pure core does not reach back into the I/O packages of its
			// own area either.
			if strings.HasSuffix(d, "/adsyn/adserver") || d == "github.com/adsyn/adsyn/segments" || strings.HasSuffix(d, "/adsyn/syndication") {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}
