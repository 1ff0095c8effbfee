package adserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"sync"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
)

// TokenKind says what a token may be used for; a click token is no
// impression token and the other way round.
type TokenKind uint8

const (
	TokenImpression TokenKind = 1
	TokenClick      TokenKind = 2
)

// Token is what /ad signs into its click and viewable-impression URLs
// (HMAC-SHA256, P8), so /click and /imp need no state and cannot be
// pointed elsewhere: /click only ever redirects to Landing.
type Token struct {
	Kind     TokenKind
	Issued   int64    // unix seconds
	Imp      event.ID // the impression's event id
	Consent  consent.Set
	Campaign string
	Creative string
	Site     string
	Slot     string
	Visitor  string // only with consent to store on device
	Landing  string // click tokens only
}

// MaxTokenLen bounds the token text accepted by /click and /imp.
const MaxTokenLen = 4096

const (
	tokenVersion = 1
	macLen       = sha256.Size
	tokenHead    = 1 + 1 + 1 + 8 + 16 + 2 // version, kind, key, issued, imp, consent
)

var b64 = base64.RawURLEncoding.Strict() // strict: no two texts decode to one token

// signer signs with the first key and verifies with any.
type signer struct {
	keys [][]byte
	macs []sync.Pool // one per key: hash.Hash
	bufs sync.Pool   // *[]byte scratch
}

func newSigner(keys [][]byte) *signer {
	s := &signer{keys: keys, macs: make([]sync.Pool, len(keys))}
	for i, k := range keys {
		s.macs[i].New = func() any { return hmac.New(sha256.New, k) }
	}
	s.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	return s
}

// Append appends the URL-safe text of t, signed, to dst.
func (s *signer) Append(dst []byte, t *Token) []byte {
	bp := s.bufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, tokenVersion, byte(t.Kind), 0)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Issued))
	b = append(b, t.Imp[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(t.Consent))
	for _, f := range [...]string{t.Campaign, t.Creative, t.Site, t.Slot, t.Visitor} {
		b = appendShort(b, f)
	}
	if t.Kind == TokenClick {
		b = binary.BigEndian.AppendUint16(b, uint16(min(len(t.Landing), maxURL)))
		b = append(b, t.Landing[:min(len(t.Landing), maxURL)]...)
	}
	m := s.macs[0].Get().(hash.Hash)
	m.Reset()
	m.Write(b)
	b = m.Sum(b)
	s.macs[0].Put(m)
	dst = b64.AppendEncode(dst, b)
	*bp = b
	s.bufs.Put(bp)
	return dst
}

func appendShort(b []byte, s string) []byte {
	s = s[:min(len(s), 255)]
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// Parse verifies text as a token of kind and decodes it. It answers
// ErrBadToken for anything malformed, forged, altered or of another kind.
// It does not check expiry.
func (s *signer) Parse(text []byte, kind TokenKind) (Token, error) {
	var t Token
	if len(text) == 0 || len(text) > MaxTokenLen {
		return t, ErrBadToken
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	b, err := b64.AppendDecode((*bp)[:0], text)
	*bp = b[:0]
	if err != nil || len(b) < tokenHead+macLen {
		return t, ErrBadToken
	}
	body, mac := b[:len(b)-macLen], b[len(b)-macLen:]
	if body[0] != tokenVersion || TokenKind(body[1]) != kind || int(body[2]) >= len(s.keys) {
		return t, ErrBadToken
	}
	k := int(body[2])
	m := s.macs[k].Get().(hash.Hash)
	m.Reset()
	m.Write(body)
	var sum [macLen]byte
	ok := hmac.Equal(m.Sum(sum[:0]), mac)
	s.macs[k].Put(m)
	if !ok {
		return t, ErrBadToken
	}
	t.Kind = kind
	t.Issued = int64(binary.BigEndian.Uint64(body[3:11]))
	copy(t.Imp[:], body[11:27])
	t.Consent = consent.Set(binary.BigEndian.Uint16(body[27:29]))
	rest := body[tokenHead:]
	for _, f := range [...]*string{&t.Campaign, &t.Creative, &t.Site, &t.Slot, &t.Visitor} {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return Token{}, ErrBadToken
		}
		n := 1 + int(rest[0])
		*f = string(rest[1:n])
		rest = rest[n:]
	}
	if kind == TokenClick {
		if len(rest) < 2 {
			return Token{}, ErrBadToken
		}
		n := int(binary.BigEndian.Uint16(rest))
		if len(rest) < 2+n {
			return Token{}, ErrBadToken
		}
		t.Landing = string(rest[2 : 2+n])
		rest = rest[2+n:]
	}
	if len(rest) != 0 {
		return Token{}, ErrBadToken
	}
	return t, nil
}
