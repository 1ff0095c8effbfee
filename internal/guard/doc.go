// Package guard decides whether a text names a sensitive category (P1): the
// one place that judgement is made, for the event choke point, segment
// taxonomies and campaign targeting alike. It is a pure core: it imports
// neither fasthttp nor nats, and a Guard is immutable and safe for
// concurrent use; Sensitive allocates nothing. A Cache remembers a Guard's
// verdicts by the exact text, for callers that ask about recurring texts.
//
// Text is folded (fold.go) into words: percent-escapes decoded, punycode
// host labels decoded (punycode.go), case, accents, compatibility forms and
// look-alike letters undone; every other character separates words, so host
// labels, path segments and query words ("+" included) are words. The words
// are scanned for the terms of a lexicon (lexicon.go); the built-in one
// (data/sensitive.txt) holds English and Russian terms, Russian inflection
// handled by stems, and each Cyrillic term also matches its usual Latin
// spellings (translit.go).
//
// A term is found as a whole word, a stem at a word's start, or inside a
// compound word by the rules of compound.go: a term of seven letters or
// more wherever it starts or ends a part of a word at least three letters
// long ("helpdepression"); a shorter one only glued to a partner word
// ("hivtest", "gaydating", "вичтест", "mychurch"). So "archive",
// "jewelry", "section" and "hospitality" stay clean. Where the rules err,
// they err towards a match: a false positive costs a signal, a false
// negative breaks a promise.
package guard
