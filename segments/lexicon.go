package segments

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// A lexicon matches terms against folded text. A term is one to maxWords
// words; a word ending in * is a stem that matches any word it starts (so
// "депресс*" matches депрессия, депрессии, депрессивный: Russian and English
// inflection handled by stems). Terms are indexed by their last word, so text
// is scanned once, word by word, with the previous words at hand.
type lexicon struct {
	exact   map[string][]int32 // last word, exact → term
	stems   map[string][]int32 // last word, stem → term
	minStem int                // byte lengths of the shortest and longest stem
	maxStem int
	terms   []term
	// gate has a bit for the first four bytes of every last word, so most
	// words are dismissed without a map lookup. short is set when some
	// exact last word is shorter than that (words that short are always
	// looked up); open when some stem is (the gate is then not used).
	gate  *[gateBits / 64]uint64
	short bool
	open  bool
	// stemLens has bit n set when some stem is n bytes long.
	stemLens uint64
}

const gateBits = 1 << 16

func gateHash(b []byte) uint32 {
	x := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	return (x * 0x9E3779B1) >> 16
}

func (l *lexicon) gateSet(w lexWord) {
	if len(w.text) < 4 {
		if w.stem {
			l.open = true
		} else {
			l.short = true
		}
		return
	}
	h := gateHash([]byte(w.text[:4]))
	l.gate[h/64] |= 1 << (h % 64)
}

// gated reports whether no last word can match w.
func (l *lexicon) gated(w []byte) bool {
	switch {
	case l.open:
		return false
	case len(w) < 4:
		return !l.short
	}
	h := gateHash(w)
	return l.gate[h/64]&(1<<(h%64)) == 0
}

type term struct {
	words []lexWord
	val   int32 // what the owner attaches: a category, a rule
	text  string
}

type lexWord struct {
	text string
	stem bool
}

const (
	maxWords    = 4 // words in one term
	minStemRune = 3 // runes in a stem: shorter ones match too much
)

var errTerm = errors.New("bad term")

func newLexicon() lexicon {
	return lexicon{exact: map[string][]int32{}, stems: map[string][]int32{}, gate: new([gateBits / 64]uint64)}
}

// parseTerm folds a term as text is folded, keeping the stem marks.
func parseTerm(s string) ([]lexWord, error) {
	f := acquireFolder()
	defer releaseFolder(f)
	var words []lexWord
	for _, raw := range strings.Fields(s) {
		stem := strings.HasSuffix(raw, "*")
		raw = strings.TrimSuffix(raw, "*")
		if strings.Contains(raw, "*") {
			return nil, fmt.Errorf("%w %q: * only ends a word", errTerm, s)
		}
		folded := fold(f, raw)
		if len(folded) == 0 {
			return nil, fmt.Errorf("%w %q: no letters or digits in %q", errTerm, s, raw)
		}
		parts := bytes.Split(folded, []byte{' '})
		for i, p := range parts {
			words = append(words, lexWord{text: string(p), stem: stem && i == len(parts)-1})
		}
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%w: empty", errTerm)
	}
	if len(words) > maxWords {
		return nil, fmt.Errorf("%w %q: more than %d words", errTerm, s, maxWords)
	}
	for _, w := range words {
		if w.stem && utf8.RuneCountInString(w.text) < minStemRune {
			return nil, fmt.Errorf("%w %q: a stem needs at least %d letters", errTerm, s, minStemRune)
		}
	}
	return words, nil
}

// add indexes words with val.
func (l *lexicon) add(words []lexWord, val int32, text string) {
	id := int32(len(l.terms))
	l.terms = append(l.terms, term{words: words, val: val, text: text})
	last := words[len(words)-1]
	l.gateSet(last)
	if !last.stem {
		l.exact[last.text] = append(l.exact[last.text], id)
		return
	}
	l.stems[last.text] = append(l.stems[last.text], id)
	if n := len(last.text); l.minStem == 0 || n < l.minStem {
		l.minStem = n
	}
	l.maxStem = max(l.maxStem, len(last.text))
	if len(last.text) < 64 {
		l.stemLens |= 1 << len(last.text)
	}
}

// scan calls fn with every term found in folded text, in text order, until
// fn returns true.
func (l *lexicon) scan(b []byte, fn func(t *term) bool) {
	var ring [maxWords][2]int32 // the last words, ring[n%maxWords] the newest
	n := 0
	for i := 0; ; {
		start, end, ok := nextWord(b, i)
		if !ok {
			return
		}
		i = end + 1
		ring[n%maxWords] = [2]int32{int32(start), int32(end)}
		n++
		w := b[start:end]
		if l.gated(w) {
			continue
		}
		if ids, ok := l.exact[string(w)]; ok && l.check(b, &ring, n, ids, fn) {
			return
		}
		for k := l.minStem; k <= len(w) && k <= l.maxStem; k++ {
			if k < 64 && l.stemLens&(1<<k) == 0 || k < len(w) && !utf8.RuneStart(w[k]) {
				continue
			}
			if ids, ok := l.stems[string(w[:k])]; ok && l.check(b, &ring, n, ids, fn) {
				return
			}
		}
	}
}

// check tests the words before the last one of each term; it reports
// whether fn asked to stop.
func (l *lexicon) check(b []byte, ring *[maxWords][2]int32, n int, ids []int32, fn func(*term) bool) bool {
	for _, id := range ids {
		t := &l.terms[id]
		k := len(t.words)
		if k > n {
			continue
		}
		ok := true
		for j := 0; j < k-1 && ok; j++ {
			pos := ring[(n-k+j)%maxWords]
			ok = t.words[j].matches(b[pos[0]:pos[1]])
		}
		if ok && fn(t) {
			return true
		}
	}
	return false
}

func (w lexWord) matches(b []byte) bool {
	if w.stem {
		return len(b) >= len(w.text) && string(b[:len(w.text)]) == w.text
	}
	return string(b) == w.text
}

// overlaps returns a one-word term that a stem among words could also
// match: the stem starts the term's word, or the term's stem starts it. (A
// phrase is sensitive only whole, and whole phrases are found by scan.)
func (l *lexicon) overlaps(words []lexWord) (*term, bool) {
	for i := range l.terms {
		t := &l.terms[i]
		if len(t.words) != 1 {
			continue
		}
		tw := t.words[0]
		for _, w := range words {
			if !w.stem {
				continue // an exact word meets a term only where scan finds it
			}
			if strings.HasPrefix(tw.text, w.text) || (tw.stem && strings.HasPrefix(w.text, tw.text)) {
				return t, true
			}
		}
	}
	return nil, false
}
