package adserver

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Rendering appends to a caller's buffer and allocates nothing.

// ClickMacro in an HTML creative is replaced by its click URL.
const ClickMacro = "%%CLICK_URL%%"

const docHead = `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
	`<style>html,body{margin:0;padding:0;overflow:hidden;background:transparent;font:14px/1.35 system-ui,sans-serif}` +
	`a{color:inherit;text-decoration:none}img{display:block;border:0;max-width:100%}` +
	`.n{display:flex;gap:10px;padding:10px;box-sizing:border-box;height:100%;border:1px solid #ddd;border-radius:6px;background:#fff;color:#222}` +
	`.n img{width:96px;height:96px;object-fit:cover;border-radius:4px}.n b{display:block;font-size:15px;margin-bottom:4px}` +
	`.n .c{display:inline-block;margin-top:6px;padding:3px 10px;border-radius:4px;background:#0b5fff;color:#fff}` +
	`.ad{position:absolute;top:2px;right:4px;font-size:10px;color:#777;background:rgba(255,255,255,.8);padding:0 3px}</style></head><body>`

const docTail = `</body></html>`

// appendDoc appends the creative's HTML document (the iframe's srcdoc).
func appendDoc(b []byte, d *Decision, card *ProfileCard, click []byte) []byte {
	b = append(b, docHead...)
	c := d.Content
	switch d.Creative.Type {
	case Image:
		b = append(b, `<a href="`...)
		b = appendHTML(b, click)
		b = append(b, `" target="_blank" rel="noopener"><img src="`...)
		b = appendHTMLString(b, c.Image)
		b = append(b, `" width="`...)
		b = strconv.AppendInt(b, int64(d.W), 10)
		b = append(b, `" height="`...)
		b = strconv.AppendInt(b, int64(d.H), 10)
		b = append(b, `" alt="`...)
		b = appendHTMLString(b, c.Alt)
		b = append(b, `"></a>`...)
	case HTML:
		// The advertiser's markup, in the sandboxed iframe, with the click macro filled.
		html := c.HTML
		for {
			i := strings.Index(html, ClickMacro)
			if i < 0 {
				break
			}
			b = append(b, html[:i]...)
			b = appendHTML(b, click)
			html = html[i+len(ClickMacro):]
		}
		b = append(b, html...)
	case Native:
		n := c.Native
		if n == nil {
			break
		}
		b = appendCard(b, click, n.Image, n.Title, n.Body, n.CTA, n.Sponsor)
	case Profile:
		if card == nil {
			break
		}
		b = appendCard(b, click, card.Photo, card.Name, card.Competence, card.Price, "")
	}
	b = append(b, `<span class="ad">Ad</span>`...)
	return append(b, docTail...)
}

func appendCard(b, click []byte, img, title, body, cta, sponsor string) []byte {
	b = append(b, `<a class="n" href="`...)
	b = appendHTML(b, click)
	b = append(b, `" target="_blank" rel="noopener">`...)
	if img != "" {
		b = append(b, `<img src="`...)
		b = appendHTMLString(b, img)
		b = append(b, `" alt="">`...)
	}
	b = append(b, `<div><b>`...)
	b = appendHTMLString(b, title)
	b = append(b, `</b>`...)
	b = appendHTMLString(b, body)
	if sponsor != "" {
		b = append(b, `<br><small>`...)
		b = appendHTMLString(b, sponsor)
		b = append(b, `</small>`...)
	}
	if cta != "" {
		b = append(b, `<br><span class="c">`...)
		b = appendHTMLString(b, cta)
		b = append(b, `</span>`...)
	}
	return append(b, `</div></a>`...)
}

// htmlEscape holds the replacement of each byte that needs one.
var htmlEscape = [256]string{'&': "&amp;", '<': "&lt;", '>': "&gt;", '"': "&#34;", '\'': "&#39;"}

func appendHTMLString(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		if r := htmlEscape[s[i]]; r != "" {
			b = append(b, s[start:i]...)
			b = append(b, r...)
			start = i + 1
		}
	}
	return append(b, s[start:]...)
}

func appendHTML(b, s []byte) []byte { return appendHTMLString(b, b2s(s)) }

const hexDigits = "0123456789abcdef"

// jsonSafe marks the ASCII bytes a JSON string may hold as they are. The
// ad JSON is read by fetch, never embedded in HTML, so < > & stay as they are.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// jsonDocHead is docHead escaped for a JSON string, once.
var jsonDocHead = func() string {
	return string(appendJSONText(nil, docHead))
}()

// appendJSON appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSON(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONText(b, s)
	return append(b, '"')
}

// appendJSONText appends s escaped for a JSON string, without the quotes.
func appendJSONText(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			if c == '"' || c == '\\' {
				b = append(b, '\\', c)
			} else {
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, `\u202`...)
				b = append(b, hexDigits[r&0xf])
			}
			start = i + n
		}
		i += n
	}
	return append(b, s[start:]...)
}
