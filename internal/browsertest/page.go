package browsertest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"os"
	"testing"
	"time"
)

// Page speaks the DevTools protocol to one page. It is not safe for
// concurrent use.
type Page struct {
	ws *wsConn
	id int
}

// Call sends a command and returns its result, skipping events; an error
// fails tb.
func (p *Page) Call(tb testing.TB, method string, params any) json.RawMessage {
	tb.Helper()
	if params == nil {
		params = map[string]any{}
	}
	p.id++
	msg, _ := json.Marshal(map[string]any{"id": p.id, "method": method, "params": params})
	_ = p.ws.c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := p.ws.write(msg); err != nil {
		tb.Fatalf("%s: %v", method, err)
	}
	for {
		m, err := p.ws.read()
		if err != nil {
			tb.Fatalf("%s: %v", method, err)
		}
		var r struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(m, &r) != nil || r.ID != p.id {
			continue // an event
		}
		if r.Error != nil {
			tb.Fatalf("%s: %s", method, r.Error.Message)
		}
		return r.Result
	}
}

// Eval runs a JavaScript expression (awaiting a promise) and decodes its
// value into out, unless out is nil. A thrown exception fails tb.
func (p *Page) Eval(tb testing.TB, expr string, out any) {
	tb.Helper()
	res := p.Call(tb, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		tb.Fatal(err)
	}
	if r.Exception != nil {
		tb.Fatalf("%s: %s", expr, r.Exception.Text)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			tb.Fatalf("%s: %s: %v", expr, r.Result.Value, err)
		}
	}
}

// Wait polls a JavaScript condition until it is truthy; past the deadline
// it fails tb with the page's text.
func (p *Page) Wait(tb testing.TB, what string, d time.Duration, expr string) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		var ok bool
		p.Eval(tb, "!!("+expr+")", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var txt string
			p.Eval(tb, `document.body ? document.body.innerText : ""`, &txt)
			tb.Fatalf("timed out after %s waiting for %s; page says:\n%s", d, what, txt)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Screenshot writes a PNG of the whole page to path.
func (p *Page) Screenshot(tb testing.TB, path string) {
	tb.Helper()
	b := p.capture(tb, map[string]any{"format": "png", "captureBeyondViewport": true})
	if len(b) < 1000 {
		tb.Fatalf("screenshot: %d bytes", len(b))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("screenshot: %s", path)
}

func (p *Page) capture(tb testing.TB, params map[string]any) []byte {
	tb.Helper()
	var r struct {
		Data string `json:"data"`
	}
	_ = json.Unmarshal(p.Call(tb, "Page.captureScreenshot", params), &r)
	b, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		tb.Fatalf("screenshot: %v", err)
	}
	return b
}

// Rect is an element's box in CSS pixels of the viewport.
type Rect struct{ X, Y, W, H float64 }

// Rect returns the box of the first element matching a CSS selector; an
// empty box fails tb.
func (p *Page) Rect(tb testing.TB, selector string) Rect {
	tb.Helper()
	sel, _ := json.Marshal(selector)
	var r Rect
	p.Eval(tb, `(function(){var b=document.querySelector(`+string(sel)+`).getBoundingClientRect();`+
		`return {X:b.x,Y:b.y,W:b.width,H:b.height}})()`, &r)
	if r.W == 0 {
		tb.Fatalf("rect of %s: %+v", selector, r)
	}
	return r
}

// Colorful reports whether a screenshot of r holds more than a few colours,
// that is whether something is drawn there.
func (p *Page) Colorful(tb testing.TB, r Rect) bool {
	tb.Helper()
	b := p.capture(tb, map[string]any{"format": "png",
		"clip": map[string]any{"x": r.X, "y": r.Y, "width": r.W, "height": r.H, "scale": 1}})
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
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
