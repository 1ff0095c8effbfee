package guard

import "unicode/utf8"

// Compounds. Host names and slugs glue words together ("hivtest.example",
// "gaydating", "вичтест"), so a guard also looks inside a longer word, by
// two rules that keep false positives low:
//
//  1. A long term, of at least minLong letters, is found wherever it starts
//     or ends a part of a word at least minPart letters long: a stem inside
//     a word ("helpdepression", "aromatherapy" is not: "therap" is short),
//     an exact term ending one ("outpatient"), or starting one when what
//     follows is not a mere ending ("hospitality" is not "hospital").
//  2. Any term of at least minPart letters is found glued to a partner:
//     a word that commonly joins sensitive terms in names, after it ("hiv"
//     + "test", "gay" + "dating", "вич" + "тест") or before it ("my",
//     "anti", "помощь"). So "archive", "chivalry", "jewelry", "section",
//     "culture", "bridesmaids", "validating" and "гейзер" stay clean.
//
// Failing closed costs a lost signal, not a leak: "therapist" is health
// (therap* starts it), and would be through "rapist" too were it a term;
// "drugstore" is health by rule 2.
const (
	minLong = 7 // letters in a term found inside any word
	minPart = 3 // letters of a term, or of what it is glued to
)

// Partners are folded as text is, and transliterated when Cyrillic.
var (
	partnersAfter = []string{
		"test", "tests", "testing", "check", "help", "helpline", "hotline", "info", "online", "chat", "club", "clubs",
		"forum", "clinic", "clinics", "center", "centre", "care", "support", "doctor", "doctors", "treatment",
		"positive", "dating", "date", "meet", "singles", "bar", "bars", "sauna", "news", "life", "guide",
		"group", "groups", "network", "site", "hub", "zone", "now", "today", "pride", "rights", "tube",
		"cam", "cams", "video", "videos", "friends", "shop", "store", "pills", "meds", "cure", "symptoms",
		"lawyer", "lawyers", "tips", "advice", "community",
		"тест", "тесты", "помощь", "онлайн", "клиника", "центр", "форум", "чат", "клуб", "инфо", "сайт",
		"врач", "лечение", "симптомы", "анализ", "анализы", "знакомства", "юрист", "адвокат", "анонимно",
	}
	partnersBefore = []string{
		"my", "the", "best", "top", "find", "local", "online", "anti", "stop", "help", "cheap", "buy", "get",
		"real", "live", "free",
		"мой", "наш", "анти", "стоп", "помощь", "лучший", "онлайн", "бесплатно",
	}
	// endings after a long exact term that make another word, not a
	// compound: hospital-ity, christian-ity.
	endings = []string{"ity", "ities", "ism", "isms", "ist", "ists", "ness", "ize", "ized", "ise", "ised", "ization",
		"isation", "ally", "ics", "ers", "ing", "ings", "ous", "ship", "able", "ably", "ment", "ments"}
)

// glue indexes a lexicon's single-word terms for compounds.
type glue struct {
	long     map[string][]int32 // single-word terms of minLong letters or more
	longLens uint64             // byte lengths of those (below 64)
	longGate *[gateBits / 64]uint64
	// starts gates exact single-word terms by length and first bytes,
	// after and before gate partners by length and last or first bytes.
	starts, after, before *[gateBits / 64]uint64
	exactLens             uint64
	partAfter, partBefore map[string]bool
	afterLens, beforeLens uint64
	// afterEnds and beforeStarts have a bit for the last and the first
	// three bytes of every partner (two for a two-byte one): most words are
	// dismissed by one look.
	afterEnds, beforeStarts *[gateBits / 64]uint64
	endings                 map[string]bool
	shortBefore             bool // some partner before terms is two bytes long
}

// edge hashes the first three bytes of b, or two when that is all.
func edge(b []byte) uint32 {
	x := uint32(b[0]) | uint32(b[1])<<8
	if len(b) > 2 {
		x |= uint32(b[2])<<16 | 1<<24
	}
	return (x * 0x9E3779B1) >> 16
}

// gateOf hashes the first min(n, 4) bytes of b with n and a salt.
func gateOf(b []byte, n int, salt uint32) uint32 {
	x := salt ^ uint32(n)*0x85EBCA6B
	for i := 0; i < len(b) && i < n && i < 4; i++ {
		x = (x ^ uint32(b[i])) * 0x01000193
	}
	return (x * 0x9E3779B1) >> 16
}

func setBit(g *[gateBits / 64]uint64, h uint32)      { g[h/64] |= 1 << (h % 64) }
func hasBit(g *[gateBits / 64]uint64, h uint32) bool { return g[h/64]&(1<<(h%64)) != 0 }

// enableCompounds makes Scan look inside words (see the rules above).
func (l *Lexicon) enableCompounds() {
	g := &glue{
		long: map[string][]int32{}, longGate: new([gateBits / 64]uint64),
		starts: new([gateBits / 64]uint64), after: new([gateBits / 64]uint64), before: new([gateBits / 64]uint64),
		partAfter: map[string]bool{}, partBefore: map[string]bool{}, endings: map[string]bool{},
		afterEnds: new([gateBits / 64]uint64), beforeStarts: new([gateBits / 64]uint64),
	}
	for id := range l.terms {
		t := &l.terms[id]
		if len(t.Words) != 1 {
			continue
		}
		w := t.Words[0]
		n := len(w.Text)
		if utf8.RuneCountInString(w.Text) >= minLong && n < 64 {
			g.long[w.Text] = append(g.long[w.Text], int32(id))
			g.longLens |= 1 << n
			setBit(g.longGate, gateHash([]byte(w.Text)))
		}
		if !w.Stem && n < 64 && utf8.RuneCountInString(w.Text) >= minPart {
			g.exactLens |= 1 << n
			setBit(g.starts, gateOf([]byte(w.Text), n, 1))
		}
	}
	for _, p := range foldedPartners(partnersAfter) {
		g.partAfter[p] = true
		g.afterLens |= 1 << len(p)
		setBit(g.after, gateOf([]byte(p[len(p)-min(len(p), 4):]), len(p), 2))
		setBit(g.afterEnds, edge([]byte(p[len(p)-3:])))
	}
	for _, p := range foldedPartners(partnersBefore) {
		g.partBefore[p] = true
		g.beforeLens |= 1 << len(p)
		setBit(g.before, gateOf([]byte(p), len(p), 3))
		setBit(g.beforeStarts, edge([]byte(p[:min(len(p), 3)])))
		if len(p) == 2 {
			g.shortBefore = true
		}
	}
	for _, e := range endings {
		g.endings[e] = true
	}
	l.glue = g
}

// foldedPartners folds a partner list and adds the Latin spellings of its
// Cyrillic words.
func foldedPartners(list []string) []string {
	var out []string
	for _, p := range list {
		out = append(out, FoldString(p))
		if hasCyrillic(p) {
			for _, v := range transliterations(p) {
				out = append(out, FoldString(v))
			}
		}
	}
	return out
}

// compound returns a single-word term glued inside w, or nil.
func (l *Lexicon) compound(w []byte) *Term {
	g := l.glue
	if len(w) < 2*minPart {
		return nil
	}
	// Rule 1: a long term starting after minPart letters, or at the start
	// when exact (and then followed by more than minPart letters).
	if len(g.long) > 0 && len(w) >= minLong+minPart {
		runes := 0
		for p := 0; p+minLong <= len(w); p++ {
			if !utf8.RuneStart(w[p]) {
				continue
			}
			runes++
			if p > 0 && runes-1 < minPart || !hasBit(g.longGate, gateHash(w[p:])) {
				continue
			}
			for k := minLong; p+k <= len(w) && k < 64; k++ {
				if g.longLens&(1<<k) == 0 {
					continue
				}
				for _, id := range g.long[string(w[p:p+k])] {
					t := &l.terms[id]
					switch rest := w[p+k:]; {
					case t.Words[0].Stem && p > 0, p > 0 && len(rest) == 0:
						return t
					case p == 0 && !t.Words[0].Stem && utf8.RuneCount(rest) > minPart && !g.endings[string(rest)]:
						return t
					}
				}
			}
		}
	}
	// Rule 2: an exact term then a partner, or a partner then a term.
	for k := minPart; k+minPart <= len(w) && k < 64 && hasBit(g.afterEnds, edge(w[len(w)-3:])); k++ {
		if g.exactLens&(1<<k) == 0 || !utf8.RuneStart(w[k]) || !hasBit(g.starts, gateOf(w, k, 1)) || !g.isAfter(w[k:]) {
			continue
		}
		if t := l.whole(w[:k]); t != nil {
			return t
		}
	}
	before := hasBit(g.beforeStarts, edge(w[:3])) || g.shortBefore && hasBit(g.beforeStarts, edge(w[:2]))
	for k := 2; before && k+minPart <= len(w) && k < 64; k++ {
		if g.beforeLens&(1<<k) == 0 || !utf8.RuneStart(w[k]) || !hasBit(g.before, gateOf(w, k, 3)) || !g.partBefore[string(w[:k])] {
			continue
		}
		rest := w[k:]
		if utf8.RuneCount(rest) < minPart {
			continue
		}
		if t := l.whole(rest); t != nil {
			return t
		}
		if t := l.stemStarting(rest); t != nil {
			return t
		}
	}
	return nil
}

// isAfter reports whether rest is a partner that follows terms.
func (g *glue) isAfter(rest []byte) bool {
	n := len(rest)
	if n >= 64 || g.afterLens&(1<<n) == 0 {
		return false
	}
	return hasBit(g.after, gateOf(rest[n-min(n, 4):], n, 2)) && g.partAfter[string(rest)]
}

// whole returns a single-word exact term that is w.
func (l *Lexicon) whole(w []byte) *Term {
	for _, id := range l.exact[string(w)] {
		if t := &l.terms[id]; len(t.Words) == 1 {
			return t
		}
	}
	return nil
}

// stemStarting returns a single-word stem that starts w.
func (l *Lexicon) stemStarting(w []byte) *Term {
	for k := l.minStem; k <= len(w) && k <= l.maxStem; k++ {
		if k < 64 && l.stemLens&(1<<k) == 0 || k < len(w) && !utf8.RuneStart(w[k]) {
			continue
		}
		for _, id := range l.stems[string(w[:k])] {
			if t := &l.terms[id]; len(t.Words) == 1 {
				return t
			}
		}
	}
	return nil
}
