// Package guard decides whether a text names a sensitive category (P1): the
// one place that judgement is made, for the event choke point, segment
// taxonomies and campaign targeting alike. It is a pure core: it imports
// neither fasthttp nor nats, and a Guard is immutable and safe for
// concurrent use.
//
// Text is folded (fold.go) into words, then scanned for the terms of a
// lexicon (lexicon.go); the built-in one (data/sensitive.txt) holds English
// and Russian terms, Russian inflection handled by stems.
package guard
