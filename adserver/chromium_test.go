package adserver

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/event"
)

// TestDemoInChromium loads /demo in headless Chromium, sees both slots
// render an ad, clicks one and sees the click counted, and waits for the
// viewable beacon. Chromium is driven over the DevTools protocol with the
// standard library and the small websocket client below.
func TestDemoInChromium(t *testing.T) {
	bin := chromiumPath()
	if bin == "" {
		t.Fatal("chromium is not installed: run `apt-get install chromium` (the demo test needs a headless browser)")
	}
	srv := bustest.StartServer(t)
	ctx := testCtx(t)
	conn := srv.Connect(t)
	if err := DemoSeed(ctx, conn.JS); err != nil {
		t.Fatal(err)
	}
	cat, err := NewCatalog(ctx, conn.JS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cat.Close)
	pub := &recorder{}
	e, err := NewEdge(ctx, cat, WithTokenKeys(testKey), WithPublisher(pub),
		WithPixel(`<!-- the pixel goes here -->`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "demo in the index", 5*time.Second, func() bool { return cat.Index().sites[DemoSite] != nil })
	base := serveEdge(t, e)

	b := startChromium(t, bin)
	page := b.page(t)
	page.call(t, "Page.enable", nil)
	page.call(t, "Page.navigate", map[string]any{"url": base + "/demo"})

	// Both slots get a sandboxed iframe holding the ad.
	waitFor(t, "two ads rendered", 20*time.Second, func() bool {
		return page.eval(t, `document.querySelectorAll("iframe[data-adsyn-ad][sandbox]").length`) == "2"
	})
	for _, slot := range []string{"top", "side"} {
		got := page.eval(t, `(function(){var f=document.querySelector("[data-adsyn-slot=`+slot+`] iframe");`+
			`return f.srcdoc.indexOf("/click?t=")>0 && f.getAttribute("sandbox").indexOf("allow-same-origin")<0 && f.offsetWidth>0})()`)
		if got != "true" {
			t.Fatalf("slot %s: iframe without a click link, sandboxed wrongly, or not laid out", slot)
		}
	}
	// The pixels of the leaderboard are not blank: the ad is drawn.
	rect := page.rect(t, `[data-adsyn-slot=top] iframe`)
	waitFor(t, "leaderboard drawn", 10*time.Second, func() bool { return page.colorful(t, rect) })
	if n := len(pub.kinds(event.KindImpression)); n != 2 {
		t.Fatalf("%d impression events, want 2", n)
	}
	// Both ads are in view: a second later the tag sends the viewable beacons.
	waitFor(t, "viewable beacons", 10*time.Second, func() bool { return len(pub.kinds(event.KindViewable)) == 2 })

	// A click in the sidebar ad goes through /click and is counted.
	side := page.rect(t, `[data-adsyn-slot=side] iframe`)
	x, y := side.X+side.W/2, side.Y+side.H/2
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		page.call(t, "Input.dispatchMouseEvent", map[string]any{"type": typ, "x": x, "y": y, "button": "left", "clickCount": 1})
	}
	waitFor(t, "click counted", 10*time.Second, func() bool { return len(pub.kinds(event.KindClick)) == 1 })
	if got := counter(e.cfg.metrics, "adsyn_ad_clicks_total"); got != "1" {
		t.Fatalf("click metric %q", got)
	}
}

func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

type browser struct{ port string }

func startChromium(t *testing.T, bin string) *browser {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--window-size=1280,900", "--remote-debugging-port=0",
		"--user-agent="+BenchUserAgent, // a headless browser is a bot, and bots get no ads
		"--user-data-dir="+dir, "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // its own process group
		_ = cmd.Wait()
	})
	var port string
	waitFor(t, "chromium's DevTools port", 30*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "DevToolsActivePort"))
		if err != nil {
			return false
		}
		port, _, _ = strings.Cut(string(b), "\n")
		return port != ""
	})
	return &browser{port: port}
}

// page attaches to the browser's first page target.
func (b *browser) page(t *testing.T) *cdp {
	t.Helper()
	var targets []struct{ Type, WebSocketDebuggerURL string }
	waitFor(t, "a page target", 10*time.Second, func() bool {
		res, err := http.Get("http://127.0.0.1:" + b.port + "/json/list")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		targets = nil
		return json.NewDecoder(res.Body).Decode(&targets) == nil && len(targets) > 0
	})
	for _, tg := range targets {
		if tg.Type == "page" {
			ws, err := wsDial(tg.WebSocketDebuggerURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ws.c.Close() })
			return &cdp{ws: ws}
		}
	}
	t.Fatalf("no page target in %+v", targets)
	return nil
}

// cdp speaks the DevTools protocol over one websocket.
type cdp struct {
	ws *wsConn
	id int
}

func (c *cdp) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	c.id++
	msg, _ := json.Marshal(map[string]any{"id": c.id, "method": method, "params": params})
	if err := c.ws.write(msg); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	_ = c.ws.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		b, err := c.ws.read()
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		var r struct {
			ID     int
			Result json.RawMessage
			Error  *struct{ Message string }
		}
		if json.Unmarshal(b, &r) != nil || r.ID != c.id {
			continue // an event
		}
		if r.Error != nil {
			t.Fatalf("%s: %s", method, r.Error.Message)
		}
		return r.Result
	}
}

// eval returns the JSON text of a JavaScript expression's value.
func (c *cdp) eval(t *testing.T, expr string) string {
	t.Helper()
	var r struct {
		Result struct{ Value json.RawMessage }
	}
	_ = json.Unmarshal(c.call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}), &r)
	return string(r.Result.Value)
}

type rect struct{ X, Y, W, H float64 }

func (c *cdp) rect(t *testing.T, selector string) rect {
	t.Helper()
	var r rect
	js := `(function(){var b=document.querySelector("` + selector + `").getBoundingClientRect();return {X:b.x,Y:b.y,W:b.width,H:b.height}})()`
	if err := json.Unmarshal([]byte(c.eval(t, js)), &r); err != nil || r.W == 0 {
		t.Fatalf("rect of %s: %v %+v", selector, err, r)
	}
	return r
}

// colorful reports whether a screenshot of r holds more than a few colours.
func (c *cdp) colorful(t *testing.T, r rect) bool {
	t.Helper()
	var s struct{ Data string }
	_ = json.Unmarshal(c.call(t, "Page.captureScreenshot", map[string]any{"format": "png",
		"clip": map[string]any{"x": r.X, "y": r.Y, "width": r.W, "height": r.H, "scale": 1}}), &s)
	b, err := base64.StdEncoding.DecodeString(s.Data)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
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

// wsConn is a minimal websocket client (RFC 6455): text frames, masked
// writes, fragmented reads, pings answered. Enough for DevTools.
type wsConn struct {
	c  net.Conn
	br *bufio.Reader
}

func wsDial(raw string) (*wsConn, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", u.RequestURI(), u.Host, key)
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if res.StatusCode != 101 || res.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		c.Close()
		return nil, fmt.Errorf("websocket handshake: %s", res.Status)
	}
	return &wsConn{c: c, br: br}, nil
}

func (w *wsConn) writeFrame(op byte, p []byte) error {
	h := []byte{0x80 | op}
	switch n := len(p); {
	case n < 126:
		h = append(h, 0x80|byte(n))
	case n < 1<<16:
		h = append(h, 0x80|126)
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h = append(h, 0x80|127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	h = append(h, mask[:]...)
	body := make([]byte, len(p))
	for i := range p {
		body[i] = p[i] ^ mask[i%4]
	}
	_, err := w.c.Write(append(h, body...))
	return err
}

func (w *wsConn) write(p []byte) error { return w.writeFrame(0x1, p) }

func (w *wsConn) read() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(w.br, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(w.br, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > 64<<20 {
			return nil, errors.New("websocket frame too large")
		}
		var mask []byte
		if h[1]&0x80 != 0 {
			mask = make([]byte, 4)
			if _, err := io.ReadFull(w.br, mask); err != nil {
				return nil, err
			}
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(w.br, p); err != nil {
			return nil, err
		}
		if mask != nil {
			for i := range p {
				p[i] ^= mask[i%4]
			}
		}
		switch op {
		case 0x8:
			return nil, errors.New("websocket closed: " + strconv.Quote(string(p)))
		case 0x9:
			if err := w.writeFrame(0xA, p); err != nil {
				return nil, err
			}
			continue
		case 0xA:
			continue
		}
		msg = append(msg, p...)
		if fin {
			return msg, nil
		}
	}
}
