// Package purity holds the pure cores of adsyn to their promise: no import,
// however indirect, of the network stack (fasthttp, nats, net, net/http), so
// they can be tested and reused on their own (DESIGN.md, "Dependency rules").
package purity

import (
	"os/exec"
	"strings"
	"testing"
)

// pure lists the packages that must stay pure.
var pure = []string{
	"github.com/adsyn/adsyn/internal/guard",
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
		if len(deps) < 5 {
			t.Fatalf("go list found only %v for %s", deps, pkg)
		}
		for _, d := range deps {
			if strings.Contains(d, "fasthttp") || strings.Contains(d, "nats-io") || d == "net" || d == "net/http" {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}
