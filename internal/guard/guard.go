package guard

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
)

// ErrLexicon is a lexicon that does not parse.
var ErrLexicon = errors.New("guard: bad lexicon")

// Guard finds sensitive terms in text. The event choke point asks it about
// every signal, taxonomy loading about every segment, campaign validation
// about every targeting rule. A Guard is immutable and safe for concurrent
// use.
type Guard struct {
	lex  Lexicon
	cats []string
}

//go:embed data/sensitive.txt
var sensitiveLexicon string

var defaultGuard = func() *Guard {
	g, err := New(sensitiveLexicon)
	if err != nil {
		panic(err) // the embedded lexicon is tested
	}
	return g
}()

// Default returns the guard of the built-in English and Russian lexicon.
func Default() *Guard { return defaultGuard }

// Sensitive reports the sensitive category of the first sensitive term in
// text, by the built-in lexicon. It allocates nothing.
func Sensitive(text string) (category string, ok bool) { return defaultGuard.Sensitive(text) }

// SensitiveBytes is Sensitive for a byte slice, which it does not retain.
func SensitiveBytes(text []byte) (category string, ok bool) {
	return defaultGuard.SensitiveBytes(text)
}

// New parses a lexicon: "[category]" lines open a section (a sensitive
// category), other lines are terms of one to four words, a word ending in *
// being a stem; # starts a comment line. A Cyrillic term also gets its
// Latin spellings (translit.go), and the guard looks inside compound words
// (compound.go).
func New(lexicon string) (*Guard, error) {
	g := &Guard{lex: NewLexicon()}
	seen := map[string]bool{}
	add := func(words []Word, cat, line string) {
		var key strings.Builder
		for _, w := range words {
			key.WriteString(w.Text)
			if w.Stem {
				key.WriteByte('*')
			}
			key.WriteByte(' ')
		}
		if !seen[key.String()] {
			seen[key.String()] = true
			g.lex.Add(words, int32(g.category(cat)), line)
		}
	}
	var cyrillic []struct{ line, cat string }
	cat := ""
	for n, line := range strings.Split(lexicon, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			cat = strings.TrimSpace(line[1 : len(line)-1])
			if !IsCategory(cat) {
				return nil, fmt.Errorf("guard: lexicon line %d: %q is not a sensitive category: %w", n+1, cat, ErrLexicon)
			}
			continue
		}
		if cat == "" {
			return nil, fmt.Errorf("guard: lexicon line %d: a term before the first [category]: %w", n+1, ErrLexicon)
		}
		words, err := ParseTerm(line)
		if err != nil {
			return nil, fmt.Errorf("guard: lexicon line %d: %w: %w", n+1, ErrLexicon, err)
		}
		add(words, cat, line)
		if hasCyrillic(line) {
			cyrillic = append(cyrillic, struct{ line, cat string }{line, cat})
		}
	}
	if len(g.lex.terms) == 0 {
		return nil, fmt.Errorf("guard: lexicon has no terms: %w", ErrLexicon)
	}
	// Transliterations come after every written term, so a term written
	// in Latin keeps its own line.
	for _, c := range cyrillic {
		for _, v := range transliterations(c.line) {
			if words, err := ParseTerm(v); err == nil {
				add(words, c.cat, v)
			}
		}
	}
	g.lex.enableCompounds()
	return g, nil
}

// category returns the index of cat in g.cats, adding it when new.
func (g *Guard) category(cat string) int {
	for i, c := range g.cats {
		if c == cat {
			return i
		}
	}
	g.cats = append(g.cats, cat)
	return len(g.cats) - 1
}

// Sensitive reports the category of the first sensitive term in text. Text
// may be a search query, a URL (escapes are decoded) or any label.
func (g *Guard) Sensitive(text string) (category string, ok bool) {
	f := AcquireFolder()
	f.Fold(text)
	category, ok = g.SensitiveFolded(f)
	ReleaseFolder(f)
	return category, ok
}

// SensitiveBytes is Sensitive for a byte slice, which it does not retain.
func (g *Guard) SensitiveBytes(text []byte) (category string, ok bool) {
	f := AcquireFolder()
	f.FoldBytes(text)
	category, ok = g.SensitiveFolded(f)
	ReleaseFolder(f)
	return category, ok
}

// SensitiveFolded is Sensitive for the text f last folded, so a caller that
// folds a text for its own matching folds it once.
func (g *Guard) SensitiveFolded(f *Folder) (category string, ok bool) {
	if cat, ok := g.sensitiveIn(f.folded()); ok || !f.mixed {
		return cat, ok
	}
	return g.sensitiveIn(f.unmixed())
}

func (g *Guard) sensitiveIn(b []byte) (string, bool) {
	var found *Term
	g.lex.Scan(b, func(t *Term) bool {
		found = t
		return true
	})
	if found == nil {
		return "", false
	}
	return g.cats[found.Val], true
}

// FirstTerm returns the category and the lexicon line of the first
// sensitive term in text, for error messages.
func (g *Guard) FirstTerm(text string) (category, term string, ok bool) {
	f := AcquireFolder()
	defer ReleaseFolder(f)
	first := func(t *Term) bool {
		category, term, ok = g.cats[t.Val], t.Text, true
		return true
	}
	g.lex.Scan(f.Fold(text), first)
	if !ok && f.mixed {
		g.lex.Scan(f.unmixed(), first)
	}
	return category, term, ok
}

// Overlap returns the sensitive term a keyword's stem could reach (see
// Lexicon.Overlaps), for taxonomies that refuse such keywords.
func (g *Guard) Overlap(words []Word) (category, term string, ok bool) {
	t, ok := g.lex.Overlaps(words)
	if !ok {
		return "", "", false
	}
	return g.cats[t.Val], t.Text, true
}

// Terms calls fn with the category, the lexicon line and the words of
// every term, in lexicon order.
func (g *Guard) Terms(fn func(category, line string, words []Word)) {
	for i := range g.lex.terms {
		t := &g.lex.terms[i]
		fn(g.cats[t.Val], t.Text, t.Words)
	}
}
