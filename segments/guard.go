package segments

import (
	_ "embed"
	"fmt"
	"strings"
)

// Guard finds sensitive terms in text: the one place P1 is decided for
// signals. The builder asks it about every search query, URL and page
// category; taxonomy loading asks it about every segment; the ad server's
// campaign validation asks it about targeting rules. A Guard is immutable and
// safe for concurrent use.
type Guard struct {
	lex  lexicon
	cats []Category
}

//go:embed data/sensitive.txt
var sensitiveLexicon string

var defaultGuard = func() *Guard {
	g, err := NewGuard(sensitiveLexicon)
	if err != nil {
		panic(err) // the embedded lexicon is tested
	}
	return g
}()

// DefaultGuard returns the guard of the built-in English and Russian lexicon.
func DefaultGuard() *Guard { return defaultGuard }

// Sensitive reports the sensitive category of the first sensitive term in
// text, by the built-in lexicon. It allocates nothing.
func Sensitive(text string) (category string, ok bool) { return defaultGuard.Sensitive(text) }

// NewGuard parses a lexicon: "[category]" lines open a section (a sensitive
// category), other lines are terms of one to four words, a word ending in *
// being a stem; # starts a comment line.
func NewGuard(lexicon string) (*Guard, error) {
	g := &Guard{lex: newLexicon()}
	cat := Category("")
	for n, line := range strings.Split(lexicon, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			cat = Category(strings.TrimSpace(line[1 : len(line)-1]))
			if !cat.Sensitive() {
				return nil, fmt.Errorf("segments: lexicon line %d: %q is not a sensitive category", n+1, cat)
			}
			continue
		}
		if cat == "" {
			return nil, fmt.Errorf("segments: lexicon line %d: a term before the first [category]", n+1)
		}
		words, err := parseTerm(line)
		if err != nil {
			return nil, fmt.Errorf("segments: lexicon line %d: %w", n+1, err)
		}
		idx := -1
		for i, c := range g.cats {
			if c == cat {
				idx = i
			}
		}
		if idx < 0 {
			idx = len(g.cats)
			g.cats = append(g.cats, cat)
		}
		g.lex.add(words, int32(idx), line)
	}
	if len(g.lex.terms) == 0 {
		return nil, fmt.Errorf("segments: lexicon has no terms")
	}
	return g, nil
}

// Sensitive reports the category of the first sensitive term in text. Text
// may be a search query, a URL (escapes are decoded) or any label.
func (g *Guard) Sensitive(text string) (category string, ok bool) {
	f := acquireFolder()
	category, ok = g.sensitiveFold(f, fold(f, text))
	releaseFolder(f)
	return category, ok
}

// SensitiveBytes is Sensitive for a byte slice, which it does not retain.
func (g *Guard) SensitiveBytes(text []byte) (category string, ok bool) {
	f := acquireFolder()
	category, ok = g.sensitiveFold(f, fold(f, text))
	releaseFolder(f)
	return category, ok
}

// sensitiveFold checks folded, the last fold of f, and when that mixed
// scripts its unmixed form too.
func (g *Guard) sensitiveFold(f *folder, folded []byte) (string, bool) {
	if cat, ok := g.sensitiveFolded(folded); ok || !f.mixed {
		return cat, ok
	}
	return g.sensitiveFolded(f.unmixed())
}

func (g *Guard) sensitiveFolded(b []byte) (string, bool) {
	var found *term
	g.lex.scan(b, func(t *term) bool {
		found = t
		return true
	})
	if found == nil {
		return "", false
	}
	return string(g.cats[found.val]), true
}

// firstTerm returns the first sensitive term in text, for error messages.
func (g *Guard) firstTerm(text string) (cat Category, found string, ok bool) {
	f := acquireFolder()
	defer releaseFolder(f)
	first := func(t *term) bool {
		cat, found, ok = g.cats[t.val], t.text, true
		return true
	}
	g.lex.scan(fold(f, text), first)
	if !ok && f.mixed {
		g.lex.scan(f.unmixed(), first)
	}
	return cat, found, ok
}

// overlap returns the sensitive term a keyword stem could reach.
func (g *Guard) overlap(words []lexWord) (cat Category, found string, ok bool) {
	t, ok := g.lex.overlaps(words)
	if !ok {
		return "", "", false
	}
	return g.cats[t.val], t.text, true
}
