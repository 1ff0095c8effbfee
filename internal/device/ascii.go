package device

// ASCII helpers that work on header bytes in place, without allocating.

func toLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// equalFold reports whether b equals s, ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	return len(b) == len(s) && hasPrefixFold(b, s)
}

// hasPrefixFold reports whether b starts with s, ignoring ASCII case.
func hasPrefixFold(b []byte, s string) bool {
	if len(b) < len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if toLower(b[i]) != toLower(s[i]) {
			return false
		}
	}
	return true
}

// matcher finds a fixed set of ASCII patterns (three bytes or longer) in a
// text, ignoring case, in one pass: each position costs two table lookups, and
// patterns are compared only where the text's next three bytes begin one of
// them. Built once, read-only after.
type matcher struct {
	pats    []string       // lowercased
	class   [256]uint8     // byte (any case) -> 1..63 if in a pattern's first two bytes, else 0
	pair    [64 * 64]uint8 // two classes -> 1 + index into buckets, or 0
	buckets [][]uint16     // ids of the patterns that start with one pair
	third   []bitset       // per bucket, the lowercase bytes that follow the pair
	min     int            // shortest pattern
}

func newMatcher(pats ...string) *matcher {
	if len(pats) > len(bitset{})*64 {
		panic("device: too many matcher patterns")
	}
	m := &matcher{pats: make([]string, len(pats)), min: 1 << 30}
	classes := 0
	classOf := func(c byte) uint8 {
		if m.class[c] == 0 {
			classes++
			if classes > 63 {
				panic("device: matcher patterns use too many distinct leading bytes")
			}
			m.class[c] = uint8(classes)
			if 'a' <= c && c <= 'z' {
				m.class[c-('a'-'A')] = uint8(classes)
			}
		}
		return m.class[c]
	}
	for id, p := range pats {
		if len(p) < 3 {
			panic("device: matcher pattern shorter than 3 bytes: " + p)
		}
		lp := make([]byte, len(p))
		for i := range lp {
			lp[i] = toLower(p[i])
		}
		m.pats[id] = string(lp)
		k := int(classOf(lp[0]))*64 + int(classOf(lp[1]))
		if m.pair[k] == 0 {
			m.buckets = append(m.buckets, nil)
			m.third = append(m.third, bitset{})
			if len(m.buckets) > 255 {
				panic("device: matcher has too many pattern prefixes")
			}
			m.pair[k] = uint8(len(m.buckets))
		}
		b := int(m.pair[k]) - 1
		m.buckets[b] = append(m.buckets[b], uint16(id))
		m.third[b][lp[2]>>6] |= 1 << (lp[2] & 63)
		m.min = min(m.min, len(p))
	}
	return m
}

// index returns the id of the first pattern found in s (the leftmost match;
// among matches at one position, the first listed), or -1.
func (m *matcher) index(s []byte) int {
	if len(s) < m.min {
		return -1
	}
	next := m.class[s[0]]
	for i := 0; i+m.min <= len(s); i++ {
		c0 := next
		next = m.class[s[i+1]] // i+2 < len(s): min >= 3
		// Class 0 (a byte no pattern starts with) has no pairs: no branch needed.
		b := int(m.pair[int(c0&63)*64+int(next&63)]) - 1
		if b < 0 || !m.third[b].has(int(toLower(s[i+2]))) {
			continue
		}
		for _, id := range m.buckets[b] {
			if hasLowerPrefix(s[i:], m.pats[id]) {
				return int(id)
			}
		}
	}
	return -1
}

// bitset is a set of pattern ids.
type bitset [4]uint64

func (b *bitset) has(id int) bool { return b[id>>6]&(1<<(id&63)) != 0 }

// mask returns the set of patterns found anywhere in s.
func (m *matcher) mask(s []byte) (found bitset) {
	if len(s) < m.min {
		return found
	}
	next := m.class[s[0]]
	for i := 0; i+m.min <= len(s); i++ {
		c0 := next
		next = m.class[s[i+1]]
		b := int(m.pair[int(c0&63)*64+int(next&63)]) - 1
		if b < 0 || !m.third[b].has(int(toLower(s[i+2]))) {
			continue
		}
		for _, id := range m.buckets[b] {
			if hasLowerPrefix(s[i:], m.pats[id]) {
				found[id>>6] |= 1 << (id & 63)
			}
		}
	}
	return found
}

// hasLowerPrefix reports whether b starts with the lowercase p, ignoring b's case.
func hasLowerPrefix(b []byte, p string) bool {
	if len(b) < len(p) {
		return false
	}
	b = b[:len(p)]
	for i := 2; i < len(p); i++ { // the first two bytes matched already
		if toLower(b[i]) != p[i] {
			return false
		}
	}
	return true
}
