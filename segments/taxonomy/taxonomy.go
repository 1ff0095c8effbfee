package taxonomy

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/adsyn/adsyn/internal/guard"
)

// File is a taxonomy as operators write it (JSON).
type File struct {
	Version  string    `json:"version,omitempty"`
	Segments []Segment `json:"segments"`
}

// Segment is one interest a visitor may hold.
type Segment struct {
	ID       string   `json:"id"`               // lower-case letters, digits, . _ -; a dot does not imply a parent
	Name     string   `json:"name"`             // for people
	Parent   string   `json:"parent,omitempty"` // a broader segment; it gets a share of this one's contributions
	Category Category `json:"category"`
	Weight   float64  `json:"weight,omitempty"` // multiplies every contribution; default 1
	Rules    Rules    `json:"rules"`
}

// Rules put a visitor in a segment: any one that matches an event fires.
type Rules struct {
	Categories []string `json:"categories,omitempty"` // page categories, folded
	URLs       []string `json:"urls,omitempty"`       // "host/path" patterns (see urlmatch.go)
	Keywords   []string `json:"keywords,omitempty"`   // search terms: words, stems ending in *, phrases
	Langs      []string `json:"langs,omitempty"`      // primary language subtags
}

// Limits on a taxonomy, so a bad file cannot exhaust memory.
const (
	MaxTaxonomySize = 4 << 20
	MaxSegments     = 2000
	maxRulesPerKind = 256
	maxRuleLen      = 256
	maxDepth        = 8
)

// Contribution weights by rule kind, before the segment's weight.
const (
	weightKeyword  = 1.0
	weightURL      = 1.0
	weightCategory = 0.5
	weightLang     = 0.25
	parentShare    = 0.5 // what a parent gets of its child's contribution, per level
)

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// Taxonomy is a validated, indexed set of segments. It is immutable: swap a
// new one into a Live to change what the builder matches.
type Taxonomy struct {
	file   File // as loaded, for the API
	byID   map[string]int32
	parent []int32 // index of each segment's parent, -1 for none
	rules  []rule
	guard  *guard.Guard

	keywords guard.Lexicon
	cats     map[string][]int32
	urls     urlIndex
	langs    map[string][]int32
}

type rule struct {
	seg    int32
	id     string // the segment id
	label  string // "keyword:сантехник*": what the visibility endpoint shows
	weight float64
}

//go:embed data/taxonomy.json
var defaultTaxonomy []byte

var defaultTax = func() *Taxonomy {
	t, err := Load(bytes.NewReader(defaultTaxonomy))
	if err != nil {
		panic(err) // the embedded taxonomy is tested
	}
	return t
}()

// Default returns the built-in taxonomy of a services marketplace.
func Default() *Taxonomy { return defaultTax }

// Load reads a JSON taxonomy (at most MaxTaxonomySize bytes, no unknown
// fields) and validates it with New.
func Load(r io.Reader) (*Taxonomy, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxTaxonomySize+1))
	if err != nil {
		return nil, fmt.Errorf("segments: read taxonomy: %w", err)
	}
	if len(b) > MaxTaxonomySize {
		return nil, fmt.Errorf("segments: taxonomy exceeds %d bytes: %w", MaxTaxonomySize, ErrInvalidTaxonomy)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("segments: taxonomy JSON: %w: %w", ErrInvalidTaxonomy, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("segments: taxonomy JSON: more than one value: %w", ErrInvalidTaxonomy)
	}
	return New(f)
}

// New validates f and indexes it. A segment in a sensitive category, or
// whose id, name or rules hold a sensitive term, is refused with a
// *SegmentError wrapping ErrSensitive, whatever it is called; other faults
// wrap ErrInvalidTaxonomy.
func New(f File) (*Taxonomy, error) {
	return newTaxonomy(f, guard.Default())
}

func newTaxonomy(f File, g *guard.Guard) (*Taxonomy, error) {
	if len(f.Segments) == 0 {
		return nil, fmt.Errorf("segments: taxonomy has no segments: %w", ErrInvalidTaxonomy)
	}
	if len(f.Segments) > MaxSegments {
		return nil, fmt.Errorf("segments: taxonomy has %d segments, more than %d: %w", len(f.Segments), MaxSegments, ErrInvalidTaxonomy)
	}
	if len(f.Version) > 64 || !utf8.ValidString(f.Version) {
		return nil, fmt.Errorf("segments: taxonomy version longer than 64 bytes: %w", ErrInvalidTaxonomy)
	}
	t := &Taxonomy{
		file:     cloneFile(f),
		byID:     make(map[string]int32, len(f.Segments)),
		parent:   make([]int32, len(f.Segments)),
		guard:    g,
		keywords: guard.NewLexicon(),
		cats:     map[string][]int32{},
		langs:    map[string][]int32{},
	}
	for i := range t.file.Segments {
		s := &t.file.Segments[i]
		if err := t.checkSegment(i, s); err != nil {
			return nil, err
		}
		if _, dup := t.byID[s.ID]; dup {
			return nil, invalid(s.ID, "the id is used twice")
		}
		t.byID[s.ID] = int32(i)
	}
	for i := range t.file.Segments {
		s := &t.file.Segments[i]
		t.parent[i] = -1
		if s.Parent == "" {
			continue
		}
		p, ok := t.byID[s.Parent]
		if !ok {
			return nil, invalid(s.ID, fmt.Sprintf("parent %q is not in the taxonomy", s.Parent))
		}
		t.parent[i] = p
	}
	for i := range t.parent {
		seen := 0
		for p := t.parent[i]; p >= 0; p = t.parent[p] {
			if seen++; seen > maxDepth || p == int32(i) {
				return nil, invalid(t.file.Segments[i].ID, fmt.Sprintf("parents loop or nest deeper than %d", maxDepth))
			}
		}
	}
	for i := range t.file.Segments {
		if err := t.index(int32(i)); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func invalid(id, reason string) *SegmentError {
	return &SegmentError{Segment: id, Reason: reason, Err: ErrInvalidTaxonomy}
}

func sensitive(id, reason string) *SegmentError {
	return &SegmentError{Segment: id, Reason: reason, Err: ErrSensitive}
}

// checkSegment validates one segment; the sensitive checks come first, so a
// segment that is both malformed and sensitive is reported as sensitive.
func (t *Taxonomy) checkSegment(i int, s *Segment) error {
	id := s.ID
	if id == "" || len(id) > 64 || !utf8.ValidString(id) {
		id = fmt.Sprintf("#%d", i)
	}
	if s.Category.Sensitive() {
		return sensitive(id, fmt.Sprintf("category %s is sensitive: %s (P1)", s.Category, s.Category.Reason()))
	}
	check := func(what, text string) error {
		if cat, term, ok := t.guard.FirstTerm(text); ok {
			return sensitive(id, fmt.Sprintf("%s %q holds the sensitive term %q (%s: %s) (P1)", what, text, term, cat, Category(cat).Reason()))
		}
		return nil
	}
	texts := []struct{ what, text string }{{"id", s.ID}, {"name", s.Name}, {"parent", s.Parent}}
	for _, c := range s.Rules.Categories {
		texts = append(texts, struct{ what, text string }{"page category", c})
	}
	for _, u := range s.Rules.URLs {
		texts = append(texts, struct{ what, text string }{"URL pattern", u})
	}
	for _, k := range s.Rules.Keywords {
		texts = append(texts, struct{ what, text string }{"keyword", k})
	}
	for _, x := range texts {
		if err := check(x.what, x.text); err != nil {
			return err
		}
	}
	// A one-word stem that also reaches a sensitive word is refused (the
	// runtime guard would drop those queries anyway; refusing says so now).
	for _, k := range s.Rules.Keywords {
		if words, err := guard.ParseTerm(k); err == nil && len(words) == 1 {
			if cat, term, ok := t.guard.Overlap(words); ok {
				return sensitive(id, fmt.Sprintf("keyword %q also matches the sensitive term %q (%s: %s) (P1)", k, term, cat, Category(cat).Reason()))
			}
		}
	}

	if !idRE.MatchString(s.ID) {
		return invalid(id, "the id must be 1-64 of a-z 0-9 . _ - starting with a letter or digit")
	}
	if s.Parent != "" && !idRE.MatchString(s.Parent) {
		return invalid(id, fmt.Sprintf("parent %q is not a segment id", s.Parent))
	}
	if s.Name == "" || len(s.Name) > 128 || !utf8.ValidString(s.Name) {
		return invalid(id, "the name must be 1-128 bytes of UTF-8")
	}
	if !s.Category.Valid() {
		return invalid(id, fmt.Sprintf("category %q is not one of %s", s.Category, categoryList()))
	}
	if s.Weight < 0 || s.Weight > 10 || s.Weight != s.Weight {
		return invalid(id, "weight must be between 0 and 10 (0 means 1)")
	}
	for kind, list := range map[string][]string{"categories": s.Rules.Categories, "urls": s.Rules.URLs, "keywords": s.Rules.Keywords, "langs": s.Rules.Langs} {
		if len(list) > maxRulesPerKind {
			return invalid(id, fmt.Sprintf("more than %d %s", maxRulesPerKind, kind))
		}
		for _, v := range list {
			if v == "" || len(v) > maxRuleLen || !utf8.ValidString(v) {
				return invalid(id, fmt.Sprintf("%s entries must be 1-%d bytes of UTF-8", kind, maxRuleLen))
			}
		}
	}
	for _, k := range s.Rules.Keywords {
		if _, err := guard.ParseTerm(k); err != nil {
			return invalid(id, fmt.Sprintf("keyword %v", strings.TrimPrefix(err.Error(), guard.ErrTerm.Error()+" ")))
		}
	}
	for _, u := range s.Rules.URLs {
		if _, err := parseURLPattern(u); err != nil {
			return invalid(id, fmt.Sprintf("URL pattern %q: %v", u, err))
		}
	}
	for _, c := range s.Rules.Categories {
		if guard.FoldString(c) == "" {
			return invalid(id, fmt.Sprintf("page category %q has no letters or digits", c))
		}
	}
	for _, l := range s.Rules.Langs {
		if PrimaryLang(l) != l {
			return invalid(id, fmt.Sprintf("language %q must be a lower-case primary subtag such as en or ru", l))
		}
	}
	return nil
}

func categoryList() string {
	var b strings.Builder
	for i, c := range allowedCategories {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(c))
	}
	return b.String()
}

// HasRule reports whether label is the label of one of t's rules: a stored
// record names only these.
func (t *Taxonomy) HasRule(label string) bool {
	for i := range t.rules {
		if t.rules[i].label == label {
			return true
		}
	}
	return false
}

// index adds segment i's rules to the match indexes.
func (t *Taxonomy) index(i int32) error {
	s := &t.file.Segments[i]
	w := s.Weight
	if w == 0 {
		w = 1
	}
	add := func(kind, text string, weight float64) int32 {
		t.rules = append(t.rules, rule{seg: i, id: s.ID, label: kind + ":" + text, weight: weight * w})
		return int32(len(t.rules) - 1)
	}
	for _, k := range s.Rules.Keywords {
		words, _ := guard.ParseTerm(k)
		t.keywords.Add(words, add("keyword", k, weightKeyword), k)
	}
	for _, u := range s.Rules.URLs {
		p, _ := parseURLPattern(u)
		t.urls.add(p, add("url", u, weightURL))
	}
	for _, c := range s.Rules.Categories {
		key := guard.FoldString(c)
		t.cats[key] = append(t.cats[key], add("category", c, weightCategory))
	}
	for _, l := range s.Rules.Langs {
		t.langs[l] = append(t.langs[l], add("lang", l, weightLang))
	}
	return nil
}

func cloneFile(f File) File {
	out := File{Version: f.Version, Segments: slices.Clone(f.Segments)}
	for i := range out.Segments {
		r := &out.Segments[i].Rules
		r.Categories = slices.Clone(r.Categories)
		r.URLs = slices.Clone(r.URLs)
		r.Keywords = slices.Clone(r.Keywords)
		r.Langs = slices.Clone(r.Langs)
	}
	return out
}

// File returns a copy of the taxonomy as loaded.
func (t *Taxonomy) File() File { return cloneFile(t.file) }

// Version is the file's version label.
func (t *Taxonomy) Version() string { return t.file.Version }

// Len is the number of segments.
func (t *Taxonomy) Len() int { return len(t.file.Segments) }

// Segment returns the segment with id.
func (t *Taxonomy) Segment(id string) (Segment, bool) {
	i, ok := t.byID[id]
	if !ok {
		return Segment{}, false
	}
	return t.file.Segments[i], true
}

// Has reports whether id is a segment; it allocates nothing.
func (t *Taxonomy) Has(id string) bool {
	_, ok := t.byID[id]
	return ok
}

// CheckTarget is what campaign validation asks of a segment id it is given
// to target: it must be in the taxonomy, and neither it nor its name may be
// sensitive (P1).
func (t *Taxonomy) CheckTarget(id string) error {
	if cat, ok := t.guard.Sensitive(id); ok {
		return fmt.Errorf("segments: %q is in the sensitive category %s: %w", id, cat, ErrSensitive)
	}
	s, ok := t.Segment(id)
	if !ok {
		return fmt.Errorf("segments: %q is not a segment of the taxonomy: %w", id, ErrInvalidTaxonomy)
	}
	if cat, ok := t.guard.Sensitive(s.Name); ok {
		return fmt.Errorf("segments: %q is in the sensitive category %s: %w", id, cat, ErrSensitive)
	}
	return nil
}

// Live holds the taxonomy in force. Readers Load it without a lock; the API
// Stores a new one after validating it.
type Live struct {
	p atomic.Pointer[Taxonomy]
}

// NewLive returns a Live holding t (Default when nil).
func NewLive(t *Taxonomy) *Live {
	if t == nil {
		t = Default()
	}
	l := &Live{}
	l.p.Store(t)
	return l
}

// Load returns the taxonomy in force.
func (l *Live) Load() *Taxonomy { return l.p.Load() }

// Store puts t in force; nil is ignored.
func (l *Live) Store(t *Taxonomy) {
	if t != nil {
		l.p.Store(t)
	}
}
