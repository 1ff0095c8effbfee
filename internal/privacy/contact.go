package privacy

// Kind names what a recogniser found.
type Kind uint8

const (
	KindNone  Kind = iota
	KindEmail      // P2
	KindPhone      // P2
	KindIP         // P6: an address in free text
)

func (k Kind) String() string {
	switch k {
	case KindEmail:
		return "email"
	case KindPhone:
		return "phone"
	case KindIP:
		return "ip"
	}
	return "none"
}

// MinPhoneDigits is the fewest digits a run needs to count as a phone
// number: a local number without its area code has seven. Longer runs of
// digits (ids, dates, card numbers) are removed too: recall over precision.
const MinPhoneDigits = 7

// FindContact returns the first email address, phone number or IP address
// in b (decoded text) as b[start:end]; kind is KindNone when there is none.
func FindContact(b []byte) (start, end int, kind Kind) {
	if !mayHoldContact(b) {
		return 0, 0, KindNone
	}
	start, end = len(b), len(b)
	try := func(s, e int, ok bool, k Kind) {
		if ok && (s < start || s == start && e > end) {
			start, end, kind = s, e, k
		}
	}
	s, e, ok := findEmail(b)
	try(s, e, ok, KindEmail)
	s, e, ok = findIP(b)
	try(s, e, ok, KindIP)
	s, e, ok = findPhone(b)
	try(s, e, ok, KindPhone)
	if kind == KindNone {
		return 0, 0, KindNone
	}
	return start, end, kind
}

// mayHoldContact is a quick pass that rules out most text: an address needs
// an at sign (plain, fullwidth or spelled in brackets), a phone number seven
// digits, an IPv4 address four and an IPv6 address two colons.
func mayHoldContact(b []byte) bool {
	digits, colons := 0, 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case '0' <= c && c <= '9':
			digits++
		case c == ':':
			colons++
		case c == '@' || c == 0xEF: // 0xEF leads the fullwidth forms
			return true
		case c == '(' || c == '[' || c == '{' || c == '<':
			j := i + 1
			for j < len(b) && b[j] == ' ' {
				j++
			}
			if j+1 < len(b) && lower(b[j]) == 'a' && lower(b[j+1]) == 't' {
				return true
			}
		}
	}
	return digits >= 4 || colons >= 2
}

// maxPasses bounds AppendWithoutContacts: cutting one span can join its
// neighbours into a new one ("123[a@b.c]4567"), so it runs to a fixed point.
const maxPasses = 8

// AppendWithoutContacts appends b to dst with every email address, phone
// number and IP address cut out, using tmp as scratch. ok is false when some
// were still found after maxPasses: the caller drops the whole value then
// (fail closed).
func AppendWithoutContacts(dst, b []byte, tmp *[2][]byte) (_ []byte, ok bool) {
	cur := b
	for pass := range maxPasses {
		s, e, k := FindContact(cur)
		if k == KindNone {
			return append(dst, cur...), true
		}
		out := tmp[pass%2][:0]
		for k != KindNone {
			out = append(out, cur[:s]...)
			cur = cur[e:]
			s, e, k = FindContact(cur)
		}
		out = append(out, cur...)
		tmp[pass%2] = out
		cur = out
	}
	return dst, false
}

// isEmailLocal reports a byte that may stand in the local part of an
// address. Non-ASCII bytes count: internationalised addresses exist.
func isEmailLocal(c byte) bool {
	return isAlnum(c) || c >= 0x80 || c == '.' || c == '_' || c == '-' || c == '+' || c == '\'' ||
		c == '!' || c == '$' || c == '*' || c == '^' || c == '`' || c == '{' || c == '|' || c == '}' || c == '~'
}

func isDomain(c byte) bool { return isAlnum(c) || c >= 0x80 || c == '-' || c == '_' }

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// spelled reports the length of a spelled-out separator at b[i:] such as
// "(at)", "[at]", "{at}", "<at>" (word "at") or "(dot)" (word "dot"),
// spaces around it included; 0 if there is none.
func spelled(b []byte, i int, word string) (start, end int) {
	j := i
	for j < len(b) && b[j] == ' ' {
		j++
	}
	if j >= len(b) {
		return 0, 0
	}
	var closer byte
	switch b[j] {
	case '(':
		closer = ')'
	case '[':
		closer = ']'
	case '{':
		closer = '}'
	case '<':
		closer = '>'
	default:
		return 0, 0
	}
	k := j + 1
	for k < len(b) && b[k] == ' ' {
		k++
	}
	if len(b)-k < len(word) {
		return 0, 0
	}
	for n := 0; n < len(word); n++ {
		if lower(b[k+n]) != word[n] {
			return 0, 0
		}
	}
	k += len(word)
	for k < len(b) && b[k] == ' ' {
		k++
	}
	if k >= len(b) || b[k] != closer {
		return 0, 0
	}
	k++
	for k < len(b) && b[k] == ' ' {
		k++
	}
	return i, k
}

// atSign returns the span of an at sign at b[i:]: "@", the fullwidth and
// small forms, or a spelled "(at)"; spelledOut tells the last apart.
func atSign(b []byte, i int) (end int, spelledOut, ok bool) {
	switch {
	case b[i] == '@':
		return i + 1, false, true
	case b[i] == 0xEF && i+2 < len(b) && b[i+1] == 0xBC && b[i+2] == 0xA0: // U+FF20 ＠
		return i + 3, false, true
	case b[i] == 0xEF && i+2 < len(b) && b[i+1] == 0xB9 && b[i+2] == 0xAB: // U+FE6B ﹫
		return i + 3, false, true
	case b[i] == ' ' || b[i] == '(' || b[i] == '[' || b[i] == '{' || b[i] == '<':
		if _, e := spelled(b, i, "at"); e > 0 {
			return e, true, true
		}
	}
	return 0, false, false
}

// findEmail finds local@domain, with the at sign and dots possibly spelled
// out ("john (at) example (dot) com").
func findEmail(b []byte) (start, end int, ok bool) {
	for i := 0; i < len(b); i++ {
		ae, spelledAt, ok := atSign(b, i)
		if !ok {
			continue
		}
		// Local part, leftwards.
		s := i
		for s > 0 && isEmailLocal(b[s-1]) {
			s--
		}
		for s < i && b[s] == '.' {
			s++
		}
		if s == i {
			if spelledAt {
				i = ae - 1
			}
			continue
		}
		// Domain, rightwards: labels joined by dots, spelled or not.
		e, labels, dots := ae, 0, 0
		for e < len(b) {
			if isDomain(b[e]) {
				for e < len(b) && isDomain(b[e]) {
					e++
				}
				labels++
				continue
			}
			if b[e] == '.' && e+1 < len(b) && isDomain(b[e+1]) {
				e++
				dots++
				continue
			}
			if _, de := spelled(b, e, "dot"); de > 0 && de < len(b) && isDomain(b[de]) {
				e = de
				dots++
				continue
			}
			break
		}
		if labels == 0 || spelledAt && dots == 0 {
			continue
		}
		return s, e, true
	}
	return 0, 0, false
}

// digitAt returns the width of a digit at b[i:] (ASCII or fullwidth), or 0.
func digitAt(b []byte, i int) int {
	if '0' <= b[i] && b[i] <= '9' {
		return 1
	}
	if b[i] == 0xEF && i+2 < len(b) && b[i+1] == 0xBC && 0x90 <= b[i+2] && b[i+2] <= 0x99 {
		return 3
	}
	return 0
}

// sepAt returns the width of a separator a written phone number may carry
// between digits at b[i:]: space, - . ( ) / and the no-break space, the
// Unicode dashes and the fullwidth plus; or 0.
func sepAt(b []byte, i int) int {
	switch b[i] {
	case ' ', '-', '.', '(', ')', '/', '+', '_', '\t':
		return 1
	case 0xC2:
		if i+1 < len(b) && b[i+1] == 0xA0 {
			return 2
		}
	case 0xE2: // U+2010-2015 dashes, U+2212 minus, U+202F narrow no-break space
		if i+2 < len(b) && (b[i+1] == 0x80 && (0x90 <= b[i+2] && b[i+2] <= 0x95 || b[i+2] == 0xAF) || b[i+1] == 0x88 && b[i+2] == 0x92) {
			return 3
		}
	case 0xEF: // fullwidth + ( ) -
		if i+2 < len(b) && b[i+1] == 0xBC && (b[i+2] == 0x8B || b[i+2] == 0x88 || b[i+2] == 0x89 || b[i+2] == 0x8D) {
			return 3
		}
	}
	return 0
}

// findPhone finds a run of at least MinPhoneDigits digits, separators of up
// to three characters between them allowed. A date written 2024-05-17,
// 17.05.2024 or 2024/05/17 is not a phone number.
func findPhone(b []byte) (start, end int, ok bool) {
	for i := 0; i < len(b); {
		w := digitAt(b, i)
		if w == 0 {
			i++
			continue
		}
		s := i
		if s > 0 && b[s-1] == '+' {
			s--
		}
		var groups [4]int
		ng, seps := 0, byte(0)
		sameSep := true
		digits, e, j := 0, i, i
		for j < len(b) {
			if w := digitAt(b, j); w > 0 {
				if ng < len(groups) {
					groups[ng]++
				}
				digits++
				j += w
				e = j
				continue
			}
			// Separators between digits: at most three in a row.
			k, n := j, 0
			for k < len(b) && n < 3 {
				w := sepAt(b, k)
				if w == 0 {
					break
				}
				k += w
				n++
			}
			if n == 0 || k >= len(b) || digitAt(b, k) == 0 {
				break
			}
			if n != 1 || seps != 0 && seps != b[j] {
				sameSep = false
			}
			seps = b[j]
			ng++
			j = k
		}
		if digits >= MinPhoneDigits && !(digits == 8 && ng == 2 && sameSep && isDate(groups, seps)) {
			return s, e, true
		}
		i = e
	}
	return 0, 0, false
}

// isDate reports digit groups 4-2-2 or 2-2-4 joined by - . or /.
func isDate(g [4]int, sep byte) bool {
	return (sep == '-' || sep == '.' || sep == '/') && (g[0] == 4 && g[1] == 2 && g[2] == 2 || g[0] == 2 && g[1] == 2 && g[2] == 4)
}

func isIPChar(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || c == ':' || c == '.'
}

// findIP finds an IPv4 address in dotted form or an IPv6 address.
func findIP(b []byte) (start, end int, ok bool) {
	for i := 0; i < len(b); {
		if !isIPChar(b[i]) {
			i++
			continue
		}
		j, colons, dots := i, 0, 0
		for j < len(b) && isIPChar(b[j]) {
			switch b[j] {
			case ':':
				colons++
			case '.':
				dots++
			}
			j++
		}
		// "std::vector" is no address: a colon run glued to a word is skipped.
		glued := i > 0 && (isAlnum(b[i-1]) || b[i-1] >= 0x80) && dots < 3
		if !glued && (colons >= 2 || dots >= 3) {
			// An address may start anywhere in the run after a separator,
			// and end before its last characters ("at 10.0.0.1.").
			for k := i; k < j; k++ {
				if k > i && b[k-1] != ':' && b[k-1] != '.' {
					continue
				}
				for e := min(j, k+45); e > k; e-- {
					if validIP(b[k:e]) {
						return k, e, true
					}
				}
			}
		}
		i = j
	}
	return 0, 0, false
}

// validIP reports an IPv4 address in dotted form or an IPv6 address other
// than "::". It is netip.ParseAddr's grammar without its error values,
// which allocate; leading zeros are accepted.
func validIP(b []byte) bool {
	return validIPv4(b) || validIPv6(b)
}

func validIPv4(b []byte) bool {
	fields, n, digits := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || n > 255 {
				return false
			}
			fields++
			n, digits = 0, 0
			continue
		}
		if b[i] < '0' || b[i] > '9' || digits == 3 {
			return false
		}
		n = n*10 + int(b[i]-'0')
		digits++
	}
	return fields == 4
}

func validIPv6(b []byte) bool {
	if len(b) < 3 {
		return false
	}
	groups, double, i := 0, false, 0
	if b[0] == ':' {
		if b[1] != ':' {
			return false
		}
		double, i = true, 2
	}
	for i < len(b) {
		j := i
		for j < len(b) && isHex(b[j]) {
			j++
		}
		if j < len(b) && b[j] == '.' { // an IPv4 tail ends the address
			if !validIPv4(b[i:]) {
				return false
			}
			groups += 2
			break
		}
		if j == i || j-i > 4 {
			return false
		}
		groups++
		if i = j; i == len(b) {
			break
		}
		if b[i] != ':' {
			return false
		}
		i++
		if i == len(b) {
			return false
		}
		if b[i] == ':' {
			if double {
				return false
			}
			double = true
			i++
		}
	}
	if double {
		return groups >= 1 && groups <= 7
	}
	return groups == 8
}

// HasContact reports whether b holds an email address, phone number or IP
// address, and the kind of the first.
func HasContact(b []byte) (Kind, bool) {
	_, _, k := FindContact(b)
	return k, k != KindNone
}
