package device

import "bytes"

// Bounds on Accept-Language work.
const (
	MaxLanguages   = 8  // codes Languages returns
	maxLangEntries = 32 // entries read from one header; the rest is ignored
)

// iso639_1 is every ISO 639-1 code. Languages are reported only from here (and
// iso639_3), so a code is always a constant, never a slice of the header.
const iso639_1 = "aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co " +
	"cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha " +
	"he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr " +
	"ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl " +
	"nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm " +
	"sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo " +
	"wa wo xh yi yo za zh zu"

// iso639_3 holds the three-letter codes browsers offer for languages without
// a two-letter one (Filipino, Cantonese, Asturian, Central Kurdish, ...).
const iso639_3 = "ast ceb chr ckb dsb fil gsw haw hsb kab nds sah yue"

// twoLetter maps a two-letter primary subtag (a-z, a-z) to its code: the
// ISO 639-1 codes, and the withdrawn iw, in, ji that old browsers still send.
var twoLetter = func() (t [26 * 26]string) {
	for i := 0; i+2 <= len(iso639_1); i += 3 {
		t[int(iso639_1[i]-'a')*26+int(iso639_1[i+1]-'a')] = iso639_1[i : i+2]
	}
	for _, alias := range [...]struct{ old, code string }{{"iw", "he"}, {"in", "id"}, {"ji", "yi"}} {
		t[int(alias.old[0]-'a')*26+int(alias.old[1]-'a')] = alias.code
	}
	return t
}()

// PrimaryLanguage returns the primary subtag of the Accept-Language entry with
// the highest q (the first among equals), lowercased, as a constant: "ru" for
// "ru-RU,ru;q=0.9,en-US;q=0.8", "de" for "en;q=0.1, de". Entries with q=0,
// "*" and unknown languages are skipped; "" when none is left.
func PrimaryLanguage(acceptLanguage []byte) string {
	best, bestQ := "", 0
	s := acceptLanguage
	for n := 0; len(s) > 0 && n < maxLangEntries; n++ {
		var code string
		var q int
		code, q, s = nextLanguage(s)
		if code != "" && q > bestQ {
			best, bestQ = code, q
			if q == maxQ { // no later entry can outrank it: most headers end at the first
				break
			}
		}
	}
	return best
}

// maxQ is the highest weight qvalue reads (q=1, or none given).
const maxQ = 1000

// Languages appends to dst the distinct primary subtags of acceptLanguage in
// q order (stable among equals), at most MaxLanguages of them, with the same
// rules as PrimaryLanguage. It allocates only if dst must grow.
func Languages(acceptLanguage []byte, dst []string) []string {
	var entries [maxLangEntries]struct {
		code string
		q    int
	}
	n := 0
	s := acceptLanguage
	for read := 0; len(s) > 0 && read < maxLangEntries; read++ {
		var code string
		var q int
		code, q, s = nextLanguage(s)
		if code == "" || q <= 0 {
			continue
		}
		// Insert after every entry of equal or higher q: a stable sort.
		i := n
		for i > 0 && entries[i-1].q < q {
			entries[i] = entries[i-1]
			i--
		}
		entries[i].code, entries[i].q = code, q
		n++
	}
	start := len(dst)
next:
	for _, e := range entries[:n] {
		if len(dst)-start == MaxLanguages {
			break
		}
		for _, seen := range dst[start:] {
			if seen == e.code {
				continue next
			}
		}
		dst = append(dst, e.code)
	}
	return dst
}

// nextLanguage reads the first entry of an Accept-Language value: its
// language code ("" for "*", unknown or malformed tags) and its q in
// thousandths (-1 when malformed), and returns what follows the comma.
func nextLanguage(s []byte) (code string, q int, rest []byte) {
	item := s
	if i := bytes.IndexByte(s, ','); i >= 0 {
		item, rest = s[:i], s[i+1:]
	}
	tag, params := item, []byte(nil)
	if i := bytes.IndexByte(item, ';'); i >= 0 {
		tag, params = item[:i], item[i+1:]
	}
	code, q = primarySubtag(trimSpace(tag)), maxQ
	for len(params) > 0 {
		p := params
		params = nil
		if i := bytes.IndexByte(p, ';'); i >= 0 {
			p, params = p[:i], p[i+1:]
		}
		p = trimSpace(p)
		if len(p) >= 2 && toLower(p[0]) == 'q' && p[1] == '=' {
			q = qvalue(p[2:])
		}
	}
	return code, q, rest
}

// primarySubtag returns the known language code a tag starts with.
func primarySubtag(tag []byte) string {
	n := 0
	for n < len(tag) && tag[n] != '-' && tag[n] != '_' {
		if !isAlpha(tag[n]) || n == 3 {
			return ""
		}
		n++
	}
	switch n {
	case 2:
		return twoLetter[int(toLower(tag[0])-'a')*26+int(toLower(tag[1])-'a')]
	case 3:
		for i := 0; i+3 <= len(iso639_3); i += 4 {
			if equalFold(tag[:3], iso639_3[i:i+3]) {
				return iso639_3[i : i+3]
			}
		}
	}
	return ""
}

// qvalue parses an RFC 9110 weight ("0", "0.8", "1.000") into thousandths;
// digits past the third decimal are ignored. It returns -1 when malformed.
func qvalue(b []byte) int {
	if len(b) == 0 || (b[0] != '0' && b[0] != '1') {
		return -1
	}
	whole := int(b[0] - '0')
	b = b[1:]
	if len(b) == 0 {
		return whole * 1000
	}
	if b[0] != '.' {
		return -1
	}
	frac, scale := 0, 100
	for _, c := range b[1:] {
		if !isDigit(c) {
			return -1
		}
		frac += int(c-'0') * scale
		scale /= 10
	}
	if whole == 1 && frac != 0 {
		return -1
	}
	return whole*1000 + frac
}
