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

// appendDoc appends the creative's HTML document (the iframe's srcdoc);
// w and h are the served size of an image.
func appendDoc(b []byte, typ CreativeType, c *Content, w, h int, card *ProfileCard, click []byte) []byte {
	b = append(b, docHead...)
	switch typ {
	case Image:
		b = append(b, `<a href="`...)
		b = appendHTML(b, click)
		b = append(b, `" target="_blank" rel="noopener"><img src="`...)
		b = appendHTMLString(b, c.Image)
		b = append(b, `" width="`...)
		b = strconv.AppendInt(b, int64(w), 10)
		b = append(b, `" height="`...)
		b = strconv.AppendInt(b, int64(h), 10)
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

// docTmpl is a creative's document rendered once, when the index is built,
// split where each request's click URL goes. Its parts (after docHead, which
// all documents share) are kept as HTML and as JSON string text, so /ad
// escapes only the click URL.
type docTmpl struct {
	html, json []string // the text around the click URLs
}

// clickMark stands for the click URL while a template is rendered.
const clickMark = "\x00adsyn-click\x00"

// newDocTmpl renders the document of c for a template; nil when c's own
// text holds the mark (the document is then rendered per request).
func newDocTmpl(typ CreativeType, c *Content, w, h int) *docTmpl {
	if typ == Profile {
		return nil // the card is the user's profile as it is at request time
	}
	if strings.Contains(c.HTML, clickMark) || strings.Contains(c.Image, clickMark) || strings.Contains(c.Alt, clickMark) ||
		c.Native != nil && strings.Contains(c.Native.Title+c.Native.Body+c.Native.Image+c.Native.CTA+c.Native.Sponsor, clickMark) {
		return nil
	}
	doc := appendDoc(nil, typ, c, w, h, nil, []byte(clickMark))
	parts := strings.Split(string(doc[len(docHead):]), clickMark)
	t := &docTmpl{html: parts, json: make([]string, len(parts))}
	for i, p := range parts {
		// Escaping the parts one by one equals escaping the whole: the mark
		// is ASCII, so no escape or UTF-8 sequence spans a cut.
		t.json[i] = string(appendJSONText(nil, p))
	}
	return t
}

// appendHTML appends the document with click as its click URL.
func (t *docTmpl) appendHTML(b, click []byte) []byte {
	b = append(b, docHead...)
	for i, p := range t.html {
		if i > 0 {
			b = appendHTML(b, click)
		}
		b = append(b, p...)
	}
	return b
}

// appendJSONText appends the document after its head (jsonDocHead) as JSON
// string text; htmlClick is the click URL escaped for HTML.
func (t *docTmpl) appendJSONText(b, htmlClick []byte) []byte {
	for i, p := range t.json {
		if i > 0 {
			b = appendJSONText(b, b2s(htmlClick))
		}
		b = append(b, p...)
	}
	return b
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
		// Eight bytes at a time while none needs escaping.
		for i+8 <= len(s) && !hasHTMLSpecial(load64(s, i)) {
			i += 8
		}
		if i >= len(s) {
			break
		}
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
		// Eight bytes at a time while all are printable ASCII other than " and \.
		for i+8 <= len(s) && !hasJSONSpecial(load64(s, i)) {
			i += 8
		}
		if i >= len(s) {
			break
		}
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

// Word-at-a-time scanning (SWAR): each test is exact about whether any of
// the eight bytes matches; which one is found by the byte loop.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// load64 reads s[i:i+8] as a little-endian word (the compiler makes it one load).
func load64(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// hasZero reports whether any byte of x is 0.
func hasZero(x uint64) bool { return (x-ones)&^x&highs != 0 }

// hasByte reports whether any byte of x is c.
func hasByte(x uint64, c byte) bool { return hasZero(x ^ (ones * uint64(c))) }

// hasJSONSpecial reports whether any byte of x is a control byte, '"', '\\'
// or not ASCII.
func hasJSONSpecial(x uint64) bool {
	return (x-ones*0x20)&^x&highs != 0 || x&highs != 0 || hasByte(x, '"') || hasByte(x, '\\')
}

// hasHTMLSpecial reports whether any byte of x is one that htmlEscape replaces.
func hasHTMLSpecial(x uint64) bool {
	return hasByte(x, '&') || hasByte(x, '<') || hasByte(x, '>') || hasByte(x, '"') || hasByte(x, '\'')
}
