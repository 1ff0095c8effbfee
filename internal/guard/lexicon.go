package guard

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// A Lexicon matches terms against folded text. A term is one to maxWords
// words; a word ending in * is a stem that matches any word it starts (so
// "депресс*" matches депрессия, депрессии, депрессивный: Russian and English
// inflection handled by stems). Terms are indexed by their last word, so text
// is scanned once, word by word, with the previous words at hand.
type Lexicon struct {
	exact   map[string][]int32 // last word, exact → term
	stems   map[string][]int32 // last word, stem → term
	minStem int                // byte lengths of the shortest and longest stem
	maxStem int
	terms   []Term
	// gate has a bit for the first four bytes of every last word, so most
	// words are dismissed without a map lookup. short is set when some
	// exact last word is shorter than that (words that short are always
	// looked up); open when some stem is (the gate is then not used).
	gate  *[gateBits / 64]uint64
	short bool
	open  bool
	// stemLens has bit n set when some stem is n bytes long; stemGate a
	// bit for the first bytes and length of every stem (see gateOf).
	stemLens uint64
	stemGate *[gateBits / 64]uint64
	glue     *glue // looks inside words (compound.go); nil: whole words only
}

const gateBits = 1 << 16

func gateHash(b []byte) uint32 {
	x := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	return (x * 0x9E3779B1) >> 16
}

func (l *Lexicon) gateSet(w Word) {
	if len(w.Text) < 4 {
		if w.Stem {
			l.open = true
		} else {
			l.short = true
		}
		return
	}
	h := gateHash([]byte(w.Text[:4]))
	l.gate[h/64] |= 1 << (h % 64)
}

// gated reports whether no last word can match w.
func (l *Lexicon) gated(w []byte) bool {
	switch {
	case l.open:
		return false
	case len(w) < 4:
		return !l.short
	}
	h := gateHash(w)
	return l.gate[h/64]&(1<<(h%64)) == 0
}

// Term is one entry of a lexicon.
type Term struct {
	Words []Word
	Val   int32  // what the owner attaches: a category, a rule
	Text  string // as written
}

// Word is one folded word of a term; a stem matches every word it starts.
type Word struct {
	Text string
	Stem bool
}

const (
	maxWords    = 4 // words in one term
	minStemRune = 3 // runes in a stem: shorter ones match too much
)

// ErrTerm is a term that does not parse.
var ErrTerm = errors.New("bad term")

// NewLexicon returns an empty lexicon.
func NewLexicon() Lexicon {
	return Lexicon{exact: map[string][]int32{}, stems: map[string][]int32{}, gate: new([gateBits / 64]uint64), stemGate: new([gateBits / 64]uint64)}
}

// ParseTerm folds a term as text is folded, keeping the stem marks: one to
// four words, a word ending in * a stem of at least three letters.
func ParseTerm(s string) ([]Word, error) {
	f := AcquireFolder()
	defer ReleaseFolder(f)
	var words []Word
	for _, raw := range strings.Fields(s) {
		stem := strings.HasSuffix(raw, "*")
		raw = strings.TrimSuffix(raw, "*")
		if strings.Contains(raw, "*") {
			return nil, fmt.Errorf("%w %q: * only ends a word", ErrTerm, s)
		}
		folded := fold(f, raw)
		if len(folded) == 0 {
			return nil, fmt.Errorf("%w %q: no letters or digits in %q", ErrTerm, s, raw)
		}
		parts := bytes.Split(folded, []byte{' '})
		for i, p := range parts {
			words = append(words, Word{Text: string(p), Stem: stem && i == len(parts)-1})
		}
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrTerm)
	}
	if len(words) > maxWords {
		return nil, fmt.Errorf("%w %q: more than %d words", ErrTerm, s, maxWords)
	}
	for _, w := range words {
		if w.Stem && utf8.RuneCountInString(w.Text) < minStemRune {
			return nil, fmt.Errorf("%w %q: a stem needs at least %d letters", ErrTerm, s, minStemRune)
		}
	}
	return words, nil
}

// Len returns the number of terms.
func (l *Lexicon) Len() int { return len(l.terms) }

// Add indexes a term of words (from ParseTerm) with val.
func (l *Lexicon) Add(words []Word, val int32, text string) {
	id := int32(len(l.terms))
	l.terms = append(l.terms, Term{Words: words, Val: val, Text: text})
	last := words[len(words)-1]
	l.gateSet(last)
	if !last.Stem {
		l.exact[last.Text] = append(l.exact[last.Text], id)
		return
	}
	l.stems[last.Text] = append(l.stems[last.Text], id)
	setBit(l.stemGate, gateOf([]byte(last.Text), len(last.Text), 5))
	if n := len(last.Text); l.minStem == 0 || n < l.minStem {
		l.minStem = n
	}
	l.maxStem = max(l.maxStem, len(last.Text))
	if len(last.Text) < 64 {
		l.stemLens |= 1 << len(last.Text)
	}
}

// Scan calls fn with every term found in folded text, in text order, until
// fn returns true.
func (l *Lexicon) Scan(b []byte, fn func(t *Term) bool) {
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
		if !l.gated(w) && l.scanWord(b, w, &ring, n, fn) {
			return
		}
		if l.glue != nil {
			if t := l.compound(w); t != nil && fn(t) {
				return
			}
		}
	}
}

// scanWord looks w up whole and by its stems; it reports whether fn asked
// to stop.
func (l *Lexicon) scanWord(b, w []byte, ring *[maxWords][2]int32, n int, fn func(t *Term) bool) bool {
	if ids, ok := l.exact[string(w)]; ok && l.check(b, ring, n, ids, fn) {
		return true
	}
	for k := l.minStem; k <= len(w) && k <= l.maxStem; k++ {
		if k < 64 && l.stemLens&(1<<k) == 0 || k < len(w) && !utf8.RuneStart(w[k]) || !hasBit(l.stemGate, gateOf(w, k, 5)) {
			continue
		}
		if ids, ok := l.stems[string(w[:k])]; ok && l.check(b, ring, n, ids, fn) {
			return true
		}
	}
	return false
}

// check tests the words before the last one of each term; it reports
// whether fn asked to stop.
func (l *Lexicon) check(b []byte, ring *[maxWords][2]int32, n int, ids []int32, fn func(*Term) bool) bool {
	for _, id := range ids {
		t := &l.terms[id]
		k := len(t.Words)
		if k > n {
			continue
		}
		ok := true
		for j := 0; j < k-1 && ok; j++ {
			pos := ring[(n-k+j)%maxWords]
			ok = t.Words[j].matches(b[pos[0]:pos[1]])
		}
		if ok && fn(t) {
			return true
		}
	}
	return false
}

func (w Word) matches(b []byte) bool {
	if w.Stem {
		return len(b) >= len(w.Text) && string(b[:len(w.Text)]) == w.Text
	}
	return string(b) == w.Text
}

// Overlaps returns a one-word term that a stem among words could also
// match: the stem starts the term's word, or the term's stem starts it. (A
// phrase is sensitive only whole, and whole phrases are found by scan.)
func (l *Lexicon) Overlaps(words []Word) (*Term, bool) {
	for i := range l.terms {
		t := &l.terms[i]
		if len(t.Words) != 1 {
			continue
		}
		tw := t.Words[0]
		for _, w := range words {
			if !w.Stem {
				continue // an exact word meets a term only where scan finds it
			}
			if strings.HasPrefix(tw.Text, w.Text) || (tw.Stem && strings.HasPrefix(w.Text, tw.Text)) {
				return t, true
			}
		}
	}
	return nil, false
}
