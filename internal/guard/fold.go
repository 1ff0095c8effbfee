package guard

import (
	"bytes"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Text is matched as a sequence of folded words: percent-escapes decoded
// (twice, for double-encoded URLs), punycode host labels ("xn--…") decoded,
// letters and digits lower-cased and
// reduced to their base letters (accents, fullwidth and other compatibility
// forms; ё read as е, й as и), invisible format characters dropped, every
// other run of characters one space. So "Депрессия+лечение", "ДЕПРЕССИЯ",
// "dépression", "ｄｅｐｒｅｓｓｉｏｎ" and "%D0%B4%D0%B5..." fold alike, and word
// boundaries are where the folded text has a space. A guard also checks the
// unmixed form, where a word mixing scripts is written in its main one.

// Folder holds the scratch buffers of one fold; it is pooled so matching
// allocates nothing. A Folder is not safe for concurrent use.
type Folder struct {
	a, b, c []byte
	runes   []rune
	mixed   bool // the last fold had a word of mixed scripts
	labels  [maxLabel]rune
}

var folderPool = sync.Pool{New: func() any { return &Folder{a: make([]byte, 0, 512), b: make([]byte, 0, 512)} }}

// AcquireFolder returns a Folder from the pool; ReleaseFolder gives it back.
func AcquireFolder() *Folder { return folderPool.Get().(*Folder) }

// ReleaseFolder returns f to the pool; nothing f returned may be used after.
func ReleaseFolder(f *Folder) {
	if cap(f.a) > 64<<10 || cap(f.b) > 64<<10 || cap(f.c) > 64<<10 || cap(f.runes) > 16<<10 {
		return // let an oversized buffer go
	}
	folderPool.Put(f)
}

// Fold returns the folded form of s; it is valid until the next use of f.
func (f *Folder) Fold(s string) []byte { return fold(f, s) }

// FoldBytes is Fold for a byte slice, which f does not retain.
func (f *Folder) FoldBytes(s []byte) []byte { return fold(f, s) }

// FoldString returns the folded form of s as a string.
func FoldString(s string) string {
	f := AcquireFolder()
	defer ReleaseFolder(f)
	return string(f.Fold(s))
}

// folded returns the result of the last fold.
func (f *Folder) folded() []byte { return f.b }

func fold[T string | []byte](f *Folder, s T) []byte {
	var changed bool
	f.a, changed = unescape(f.a[:0], s)
	for range 2 {
		if !changed {
			break
		}
		f.b, changed = unescape(f.b[:0], f.a)
		f.a, f.b = f.b, f.a
	}
	if hasACE(f.a) {
		f.b = appendDecodedLabels(f.b[:0], f.a, &f.labels)
		f.a, f.b = f.b, f.a
	}
	f.b, f.mixed = foldWords(f.b[:0], f.a, &f.runes, false)
	return f.b
}

// unmixed returns the last folded text again with each word of mixed
// scripts written in its main script; it is valid until the next use of f
// and leaves fold's result as it was. A guard checks both forms: a word
// may mix scripts to hide a term ("diаbetes" with a Cyrillic а), or be a
// stem with an ending of another script.
func (f *Folder) unmixed() []byte {
	f.c, _ = foldWords(f.c[:0], f.a, &f.runes, true)
	return f.c
}

// AppendUnescaped appends s to dst with %XX escapes decoded; a % that
// starts no escape stays as it is.
func AppendUnescaped[T string | []byte](dst []byte, s T) []byte {
	dst, _ = unescape(dst, s)
	return dst
}

// unescape appends s to dst with %XX escapes decoded, and reports whether
// there were any.
func unescape[T string | []byte](dst []byte, s T) ([]byte, bool) {
	changed := false
	for {
		i := indexPercent(s)
		if i < 0 {
			return append(dst, s...), changed
		}
		dst = append(dst, s[:i]...)
		if i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				dst = append(dst, hi<<4|lo)
				s = s[i+3:]
				changed = true
				continue
			}
		}
		dst = append(dst, '%')
		s = s[i+1:]
	}
}

func indexPercent[T string | []byte](s T) int {
	switch v := any(s).(type) {
	case string:
		return strings.IndexByte(v, '%')
	case []byte:
		return bytes.IndexByte(v, '%')
	}
	return -1
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// foldWords appends the folded words of s to dst, separated by one space,
// and reports whether a word mixed scripts. Beyond case: compatibility forms
// (fullwidth, ligatures, mathematical letters) and accented letters become
// their base letters (NFKD without marks), й reads as и and ё as е, and
// invisible format characters (zero-width space, soft hyphen) vanish
// instead of splitting a word. With unmix, a word that mixes Latin with
// Cyrillic or Greek look-alikes is written in its main script.
func foldWords(dst, s []byte, scratch *[]rune, unmix bool) (_ []byte, mixed bool) {
	f := folding{dst: dst, w: word{start: len(dst)}, scratch: scratch, unmix: unmix}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			default:
				f.sep = true
				continue
			}
			if f.sep {
				f.next()
			}
			if c >= 'a' {
				f.w.scripts |= scriptLatin
			} else {
				f.w.scripts |= scriptDigit
			}
			f.dst = append(f.dst, c)
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		var decomposed []byte
		if r != utf8.RuneError && (r < 'А' || r > 'я' || r == 'й' || r == 'Й') {
			decomposed = norm.NFKD.Properties(s[i:]).Decomposition()
		}
		i += size
		if decomposed == nil { // most letters: the rune itself
			f.add(r)
			continue
		}
		for _, r := range string(decomposed) {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			f.add(r)
		}
	}
	var m bool
	f.dst, m = f.w.end(f.dst, scratch, unmix)
	return f.dst, f.mixed || m
}

// folding is the state of one foldWords.
type folding struct {
	dst          []byte
	w            word
	sep          bool // a separator is pending
	mixed, unmix bool
	scratch      *[]rune
}

// add folds one rune that has no decomposition left.
func (f *folding) add(r rune) {
	switch foldRune(&r) {
	case runeSep:
		f.sep = true
	case runeLetter:
		if f.sep {
			f.next()
		}
		f.w.note(r)
		f.dst = utf8.AppendRune(f.dst, r)
	}
}

// next ends the word and starts one after a space, unless dst is empty.
func (f *folding) next() {
	f.sep = false
	if len(f.dst) == 0 {
		return
	}
	var m bool
	f.dst, m = f.w.end(f.dst, f.scratch, f.unmix)
	f.mixed = f.mixed || m
	f.dst = append(f.dst, ' ')
	f.w = word{start: len(f.dst)}
}

const (
	runeLetter = iota // a letter or digit, folded
	runeSkip          // a mark or an invisible format character: nothing
	runeSep           // anything else separates words
)

// foldRune folds one rune that has no decomposition left.
func foldRune(r *rune) int {
	switch c := *r; {
	case c < utf8.RuneSelf:
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' {
			return runeLetter
		}
		return runeSep
	case 'а' <= c && c <= 'я': // the common case first
	case 'А' <= c && c <= 'Я':
		*r += 'а' - 'А'
	case c == 'ё' || c == 'Ё':
		*r = 'е'
	case c == utf8.RuneError:
		return runeSep
	case unicode.Is(unicode.Mn, c):
		return runeSkip // a combining mark belongs to its letter
	case unicode.Is(unicode.Cf, c):
		return runeSkip // zero-width space, soft hyphen, joiners: invisible in a word
	case !unicode.IsLetter(c) && !unicode.IsDigit(c):
		return runeSep
	default:
		*r = unicode.ToLower(c)
	}
	if *r == 'й' {
		*r = 'и' // as its decomposed form, и and a breve, folds
	}
	return runeLetter
}

// word tracks the scripts of the word being folded; digits count as one.
type word struct {
	start   int
	scripts uint8 // scriptLatin | scriptCyrillic | scriptGreek | scriptDigit
}

const (
	scriptLatin = 1 << iota
	scriptCyrillic
	scriptGreek
	scriptDigit
)

func (w *word) note(r rune) {
	switch {
	case r < utf8.RuneSelf:
		if 'a' <= r && r <= 'z' {
			w.scripts |= scriptLatin
		} else if '0' <= r && r <= '9' {
			w.scripts |= scriptDigit
		}
	case 'а' <= r && r <= 'я' || r >= 'ѐ' && r <= 'ӿ' || r == 'ԁ':
		w.scripts |= scriptCyrillic
	case r >= 'α' && r <= 'ω':
		w.scripts |= scriptGreek
	}
}

// end reports whether the word, the last in dst, mixes scripts (or letters
// and digits) and with unmix rewrites its look-alikes in its main script:
// the one with more letters that have no look-alike, else the one with
// more letters. Digits that stand for letters ("d1abetes") become them.
func (w *word) end(dst []byte, scratch *[]rune, unmix bool) (_ []byte, mixed bool) {
	mixed = w.scripts&(w.scripts-1) != 0
	if !mixed || !unmix {
		return dst, mixed
	}
	rs := (*scratch)[:0]
	var latin, cyr, strongL, strongC int
	for _, r := range string(dst[w.start:]) {
		_, twin := toLatin[r]
		switch {
		case 'a' <= r && r <= 'z':
			latin++
			if latinToCyr[r-'a'] == 0 {
				strongL++
			}
		case 'а' <= r && r <= 'я' || r >= 'ѐ' && r <= 'ӿ' || r == 'ԁ':
			cyr++
			if !twin {
				strongC++
			}
		}
		rs = append(rs, r)
	}
	cyrillic := strongC > strongL || strongC == strongL && cyr > latin
	for i, r := range rs {
		if l, ok := toLatin[r]; ok {
			r = l
		}
		if cyrillic && 'a' <= r && r <= 'z' && latinToCyr[r-'a'] != 0 {
			r = latinToCyr[r-'a']
		}
		if '0' <= r && r <= '9' && (latin > 0 || cyr > 0) {
			if d := digitAs[r-'0']; cyrillic && d.cyr != 0 {
				r = d.cyr
			} else if !cyrillic && d.latin != 0 {
				r = d.latin
			}
		}
		rs[i] = r
	}
	*scratch = rs
	dst = dst[:w.start]
	for _, r := range rs {
		dst = utf8.AppendRune(dst, r)
	}
	return dst, true
}

// Look-alikes, lower case (upper-case shapes count: В, Н, М, Т, К look like
// B, H, M, T, K), and the letters that digits stand for.
var (
	digitAs = [10]struct{ latin, cyr rune }{
		0: {'o', 'о'}, 1: {'i', 0}, 3: {'e', 'з'}, 4: {'a', 'ч'}, 5: {'s', 0}, 6: {0, 'б'}, 7: {'t', 0},
	}
	latinToCyr = [26]rune{'a' - 'a': 'а', 'b' - 'a': 'в', 'c' - 'a': 'с', 'e' - 'a': 'е', 'h' - 'a': 'н', 'k' - 'a': 'к',
		'm' - 'a': 'м', 'o' - 'a': 'о', 'p' - 'a': 'р', 't' - 'a': 'т', 'x' - 'a': 'х', 'y' - 'a': 'у'}
	toLatin = func() map[rune]rune {
		m := map[rune]rune{
			// Cyrillic letters outside а-я that only look Latin.
			'і': 'i', 'ј': 'j', 'ѕ': 's', 'ԁ': 'd', 'һ': 'h', 'ӏ': 'l',
			// Greek.
			'α': 'a', 'β': 'b', 'ε': 'e', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x',
		}
		for i, c := range latinToCyr {
			if c != 0 {
				m[c] = rune('a' + i)
			}
		}
		return m
	}()
)

// nextWord returns the word of folded text at i and where the next one
// starts; ok is false at the end.
func nextWord(b []byte, i int) (start, end int, ok bool) {
	if i >= len(b) {
		return 0, 0, false
	}
	end = i
	for end < len(b) && b[end] != ' ' {
		end++
	}
	return i, end, true
}
