package webhook

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPure holds webhook signing to a pure core: nothing it imports, however
// indirectly, reaches the network stack.
func TestPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 5 {
		t.Fatalf("go list found only %v", deps)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/nats-io/") || strings.HasPrefix(d, "github.com/valyala/fasthttp") || d == "net" || d == "net/http" {
			t.Errorf("webhook depends on %s", d)
		}
	}
}
