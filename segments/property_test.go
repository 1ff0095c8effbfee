package segments

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/guard"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// sensitiveTerms returns the words of every term of the built-in lexicon.
func sensitiveTerms() [][]guard.Word {
	var terms [][]guard.Word
	guard.Default().Terms(func(_, _ string, words []guard.Word) { terms = append(terms, words) })
	return terms
}

// sensitiveSample returns a sensitive term as a visitor might type it: a
// stem completed, case changed, ё where е is, sometimes percent-encoded.
func sensitiveSample(rng *rand.Rand) string {
	terms := sensitiveTerms()
	tm := terms[rng.IntN(len(terms))]
	words := make([]string, len(tm))
	for i, w := range tm {
		s := w.Text
		if w.Stem {
			s += []string{"", "ия", "ии", "ом", "y", "ist", "s", "ами"}[rng.IntN(8)]
		}
		if rng.IntN(3) == 0 {
			s = strings.ToUpper(s)
		}
		if rng.IntN(5) == 0 {
			s = strings.ReplaceAll(s, "е", "ё")
		}
		words[i] = s
	}
	sep := []string{" ", "-", "+", " \t"}[rng.IntN(4)]
	return strings.Join(words, sep)
}

// TestNoSensitiveEverStored feeds random event streams, sensitive terms in
// every signal, through real builders, with sensitive taxonomy entries
// offered along the way, and checks every stored record: only segments of
// the taxonomies in force, none sensitive, rules from the taxonomies, no
// query, and every consented event counted once.
func TestNoSensitiveEverStored(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("SEGMENTS_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (SEGMENTS_SEED to repeat)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	// Sensitive taxonomy entries are refused, whatever they are called.
	base := taxonomy.Default().File()
	for i := range 200 {
		s := taxonomy.Segment{ID: fmt.Sprintf("x%d", i), Name: "Harmless name", Category: taxonomy.CategoryGeneral}
		switch rng.IntN(5) {
		case 0:
			cats := taxonomy.SensitiveCategories()
			s.Category = cats[rng.IntN(len(cats))]
		case 1:
			s.Name = "Wellness " + sensitiveSample(rng)
		case 2:
			s.Rules.Keywords = []string{"relax", sensitiveSample(rng)}
		case 3:
			s.Rules.URLs = []string{"*/" + url.PathEscape(strings.ReplaceAll(sensitiveSample(rng), " ", "-"))}
		default:
			s.Rules.Categories = []string{sensitiveSample(rng)}
		}
		f := taxonomy.File{Segments: append(base.Segments[:len(base.Segments):len(base.Segments)], s)}
		_, err := taxonomy.New(f)
		var se *taxonomy.SegmentError
		if !errors.Is(err, taxonomy.ErrSensitive) || !errors.As(err, &se) || se.Segment != s.ID {
			t.Fatalf("segment %+v: %v", s, err)
		}
	}
	// A second taxonomy, a random half of the default, goes in force midway.
	half := taxonomy.File{Version: "half"}
	for _, s := range base.Segments {
		if rng.IntN(2) == 0 {
			s.Parent = ""
			half.Segments = append(half.Segments, s)
		}
	}
	taxHalf, err := taxonomy.New(half)
	if err != nil {
		t.Fatal(err)
	}

	srv := bustest.StartServer(t)
	live := taxonomy.NewLive(nil)
	// Two builders on the same partitions, to have conflicts too.
	b1 := startBuilder(t, srv.Connect(t), live, WithWindow(3*time.Millisecond, 64))
	b2 := startBuilder(t, srv.Connect(t), live, WithWindow(7*time.Millisecond, 128))
	pub := srv.Connect(t)

	var keywords, paths []string
	for _, s := range base.Segments {
		for _, k := range s.Rules.Keywords {
			keywords = append(keywords, strings.ReplaceAll(k, "*", "ами"))
		}
		for _, u := range s.Rules.URLs {
			paths = append(paths, strings.TrimPrefix(u, "*"))
		}
	}
	const visitors = 40
	want := map[string]uint64{}
	var markers []string
	gen := func(n int) []event.Event {
		evs := make([]event.Event, n)
		for i := range evs {
			v := "pv" + strconv.Itoa(rng.IntN(visitors))
			marker := fmt.Sprintf("mk%dq%d", seed%1000, len(markers))
			markers = append(markers, marker)
			e := event.Event{Kind: event.Kinds()[rng.IntN(len(event.Kinds()))], TS: now() - int64(rng.IntN(100000)), Visitor: v, Lang: []string{"ru", "en-GB", "DE", "", "zz-top"}[rng.IntN(5)]}
			if rng.IntN(10) > 0 {
				e.Consent = profile
			} else {
				e.Consent = consent.Set(rng.IntN(int(consent.All) + 1))
			}
			q := []string{keywords[rng.IntN(len(keywords))], sensitiveSample(rng), keywords[rng.IntN(len(keywords))] + " " + sensitiveSample(rng), "random words"}[rng.IntN(4)]
			e.Query = q + " " + marker
			switch rng.IntN(4) {
			case 0:
				e.URL = "https://m.example" + paths[rng.IntN(len(paths))] + "?q=" + url.QueryEscape(e.Query)
			case 1:
				e.URL = "https://m.example/" + url.PathEscape(sensitiveSample(rng)) + paths[rng.IntN(len(paths))]
			case 2:
				e.URL = "https://" + strings.ReplaceAll(strings.ToLower(sensitiveSample(rng)), " ", "-") + ".example" + paths[rng.IntN(len(paths))]
			}
			if rng.IntN(3) == 0 {
				e.Categories = []string{[]string{"plumbing", "Wedding", sensitiveSample(rng)}[rng.IntN(3)]}
			}
			if e.Kind == event.KindImpression {
				e.Campaign = "camp" + strconv.Itoa(rng.IntN(5))
			}
			if e.Consent.Allow(consent.BuildProfile) {
				want[v]++
			}
			evs[i] = e
		}
		return evs
	}
	processed := func() uint64 {
		var n uint64
		for _, b := range []*Builder{b1, b2} {
			s := b.Stats()
			n += s.Applied + s.SkippedConsent + s.SkippedVisitor + s.Duplicates
		}
		return n
	}
	first := gen(1500)
	publish(t, pub, first...)
	eventually(t, 30*time.Second, "first half applied", func() bool { return processed() == uint64(len(first)) })
	live.Store(taxHalf)
	second := gen(1500)
	publish(t, pub, second...)
	eventually(t, 30*time.Second, "second half applied", func() bool { return processed() == uint64(len(first)+len(second)) })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := pub.JS.KeyValue(ctx, bus.BucketSegments)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no records")
	}
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var r Record
		if err := DecodeRecord(e.Value(), &r); err != nil {
			t.Fatal(err)
		}
		if !RecordAllowed(&r, taxonomy.Default()) {
			t.Errorf("%s holds a segment or rule outside the taxonomy, or a sensitive one: %+v", k, r.Segments)
		}
		for _, s := range r.Segments {
			if !taxHalf.Has(s.ID) {
				t.Errorf("%s holds %s, which the taxonomy in force no longer has", k, s.ID)
			}
		}
		for _, m := range markers {
			if bytes.Contains(e.Value(), []byte(m)) {
				t.Fatalf("%s holds a raw query (%s)", k, m)
			}
		}
		for _, s := range append(append([]string{}, r.Langs...), func() (out []string) {
			for _, c := range r.Caps {
				out = append(out, c.Campaign)
			}
			for _, s := range r.Segments {
				out = append(out, s.ID, s.Rule)
			}
			return out
		}()...) {
			if cat, bad := guard.Sensitive(s); bad {
				t.Errorf("%s holds %q (%s)", k, s, cat)
			}
		}
		if r.Events != want[k] {
			t.Errorf("%s: %d events, want %d", k, r.Events, want[k])
		}
	}
	s1, s2 := b1.Stats(), b2.Stats()
	if s1.Sensitive+s2.Sensitive == 0 {
		t.Error("no sensitive signal was dropped: the stream did not test anything")
	}
	t.Logf("records %d; builder 1 %+v; builder 2 %+v", len(keys), s1, s2)
}
