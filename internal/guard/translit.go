package guard

import (
	"strings"
	"unicode/utf8"
)

// Russian sites and their visitors write Russian in Latin letters, in URLs
// above all, by several schemes at once: GOST 7.79 system B, BGN/PCGN, the
// passport's ICAO 9303 and informal habits. Each Cyrillic term of a lexicon
// also gets its Latin spellings, generated when the lexicon loads: every
// letter with its usual renderings, at most maxVariants per term. A stem
// whose Latin form is shorter than minLatinStem letters is not added: Latin
// stems that short start too many unrelated words ("pash*" for "пасх*").
const (
	maxVariants  = 32
	minLatinStem = 5
)

// latin lists each Cyrillic letter's renderings, the common one first.
var latin = map[rune][]string{
	'а': {"a"}, 'б': {"b"}, 'в': {"v"}, 'г': {"g"}, 'д': {"d"},
	'е': {"e"}, 'ё': {"e", "yo"}, 'ж': {"zh", "j"}, 'з': {"z"}, 'и': {"i"},
	'й': {"y", "i", "j"}, 'к': {"k"}, 'л': {"l"}, 'м': {"m"}, 'н': {"n"},
	'о': {"o"}, 'п': {"p"}, 'р': {"r"}, 'с': {"s"}, 'т': {"t"},
	'у': {"u"}, 'ф': {"f"}, 'х': {"kh", "h", "x"}, 'ц': {"ts", "c", "tz", "cz"}, 'ч': {"ch"},
	'ш': {"sh"}, 'щ': {"shch", "sch", "shh"}, 'ъ': {""}, 'ы': {"y", "i"}, 'ь': {""},
	'э': {"e"}, 'ю': {"yu", "iu"}, 'я': {"ya", "ia"},
}

// hasCyrillic reports whether s holds a letter latin renders.
func hasCyrillic(s string) bool {
	for _, r := range s {
		if _, ok := latin[r]; ok {
			return true
		}
	}
	return false
}

// transliterations returns the Latin spellings of a lexicon term line, at
// most maxVariants, each a term line itself (stem marks kept).
func transliterations(line string) []string {
	line = strings.ToLower(line)
	// Each position of the line: its choices. Word-initial е is also "ye"
	// (BGN/PCGN: Yevrey).
	var choices [][]string
	prev := ' '
	for _, r := range line {
		opts, ok := latin[r]
		switch {
		case !ok:
			opts = []string{string(r)}
		case r == 'е' && !isWordRune(prev):
			opts = []string{"e", "ye"}
		}
		choices = append(choices, opts)
		prev = r
	}
	out := []string{}
	idx := make([]int, len(choices))
	for len(out) < maxVariants {
		var b strings.Builder
		for i, c := range choices {
			b.WriteString(c[idx[i]])
		}
		if v := b.String(); latinStemsLongEnough(v) {
			out = append(out, v)
		}
		// Next combination, the last position fastest.
		i := len(idx) - 1
		for ; i >= 0; i-- {
			if idx[i]++; idx[i] < len(choices[i]) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			break
		}
	}
	return out
}

func isWordRune(r rune) bool {
	_, cyr := latin[r]
	return cyr || 'a' <= r && r <= 'z' || '0' <= r && r <= '9'
}

// latinStemsLongEnough reports whether every stem of a term line has at
// least minLatinStem letters.
func latinStemsLongEnough(line string) bool {
	for _, w := range strings.Fields(line) {
		if s, ok := strings.CutSuffix(w, "*"); ok && utf8.RuneCountInString(s) < minLatinStem {
			return false
		}
	}
	return true
}
