package browsertest

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// path finds /usr/bin/chromium, else chromium on PATH, else fails tb.
func path(tb testing.TB) string {
	tb.Helper()
	const bin = "/usr/bin/chromium"
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	tb.Fatal("chromium is not installed: run `apt-get install chromium` (this test needs a headless browser)")
	return ""
}

// Start launches headless Chromium with a fresh profile and no network of
// its own, and returns a context for chromedp.Run on its first tab. extra
// options (window size, user agent) follow the defaults. The browser stops
// when the test ends.
func Start(tb testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	tb.Helper()
	stderr := &output{} // chromium's, for a failed start
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path(tb)),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		// Also in the defaults; named here because this machine has no network.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.CombinedOutput(stderr),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	ctx, cancel := chromedp.NewContext(alloc)
	tb.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; it must not carry a deadline.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			tb.Fatalf("start chromium: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		tb.Fatalf("chromium did not start within 30s:\n%s", stderr.String())
	}
	return ctx
}

// output collects what chromium writes, from its reader goroutine.
type output struct {
	mu sync.Mutex
	b  strings.Builder
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Run runs a chromedp action within 30s and returns its value; an error
// fails tb.
func Run[T any](tb testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
	return v
}

// Wait polls a JavaScript condition until it is truthy; past d it fails tb
// with the page's text.
func Wait(tb testing.TB, ctx context.Context, what string, d time.Duration, expr string) {
	tb.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void]("!!("+expr+")",
		chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		txt, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		tb.Fatalf("waiting %s for %s: %v; page says:\n%s", d, what, err, txt)
	}
}

// Colorful reports whether a PNG holds more than a few colours, that is
// whether something is drawn in it.
func Colorful(tb testing.TB, b []byte) bool {
	tb.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("screenshot: %v", err)
	}
	colors := map[[3]uint32]bool{}
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y += 3 {
		for x := bd.Min.X; x < bd.Max.X; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			colors[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
		}
	}
	return len(colors) > 4
}
