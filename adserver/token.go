package adserver

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
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
// pointed elsewhere: /click only ever redirects to Landing. The visitor id
// is encrypted in the token (P8): a page that reads the token learns
// nothing of it.
type Token struct {
	Kind     TokenKind
	Issued   int64    // unix seconds
	Imp      event.ID // the impression's event id
	Consent  consent.Set
	Campaign string
	Creative string
	Site     string
	Slot     string
	Visitor  string // only with consent to store on device; encrypted in the text
	Landing  string // click tokens only
}

// MaxTokenLen bounds the token text accepted by /click and /imp.
const MaxTokenLen = 4096

// The token's bytes, before base64url: version, kind, key index, issued
// (8), impression id (16), consent (2), then campaign, creative, site, slot
// and visitor as a length byte and bytes, the landing URL of a click token
// as a 2-byte length and bytes, and the HMAC-SHA256 of all that.
//
// Version 2 encrypts the visitor's bytes with AES-256 in counter mode under
// a key derived from the signing key, the impression id (128 random bits,
// one per impression) as the counter's start; the MAC covers the
// ciphertext (encrypt-then-MAC). Version 1 carried the visitor in clear: it
// is still read, for tokens issued before, but its visitor is dropped.
const (
	tokenVersion = 2
	tokenClearV1 = 1
	macLen       = sha256.Size
	tokenHead    = 1 + 1 + 1 + 8 + 16 + 2 // version, kind, key, issued, imp, consent
)

// visitorKeyLabel derives the visitor encryption key from a signing key.
const visitorKeyLabel = "adsyn token visitor encryption v2"

var b64 = base64.RawURLEncoding.Strict() // strict: no two texts decode to one token

// TokenKey is a token signing key and the id each token it signs carries,
// so that a token finds its key whatever keys came and went since.
type TokenKey struct {
	ID  byte
	Key []byte // at least 32 bytes
}

// signer signs with one key and verifies with any of its set.
type signer struct {
	byID  [256]int16     // key id → index in the slices below + 1; 0: unknown id
	ids   []byte         // by index
	macs  []sync.Pool    // one per key: hash.Hash
	ciphs []cipher.Block // one per key: the visitor's cipher
	sign  int            // index of the signing key
	bufs  *sync.Pool     // *tokenScratch, shared by the signers that replace one another
}

type tokenScratch struct {
	b       []byte
	ctr, ks [aes.BlockSize]byte
}

// newSigner signs with the key sign and verifies with every key of keys
// (sign among them); bufs may be nil, or the pool of the signer replaced.
func newSigner(sign byte, keys []TokenKey, bufs *sync.Pool) (*signer, error) {
	if len(keys) == 0 || len(keys) > maxTokenKeys {
		return nil, fmt.Errorf("adserver: give 1 to %d token keys", maxTokenKeys)
	}
	if bufs == nil {
		bufs = &sync.Pool{New: func() any { return &tokenScratch{b: make([]byte, 0, 1024)} }}
	}
	s := &signer{macs: make([]sync.Pool, len(keys)), ciphs: make([]cipher.Block, len(keys)), sign: -1, bufs: bufs}
	for i, tk := range keys {
		if len(tk.Key) < 32 {
			return nil, errors.New("adserver: a token key needs at least 32 bytes")
		}
		if s.byID[tk.ID] != 0 {
			return nil, fmt.Errorf("adserver: token key id %d given twice", tk.ID)
		}
		s.byID[tk.ID] = int16(i + 1)
		s.ids = append(s.ids, tk.ID)
		k := bytes.Clone(tk.Key)
		s.macs[i].New = func() any { return hmac.New(sha256.New, k) }
		m := hmac.New(sha256.New, k)
		m.Write([]byte(visitorKeyLabel))
		blk, err := aes.NewCipher(m.Sum(nil))
		if err != nil {
			return nil, err
		}
		s.ciphs[i] = blk
		if tk.ID == sign {
			s.sign = i
		}
	}
	if s.sign < 0 {
		return nil, fmt.Errorf("adserver: the signing token key %d is not among the keys", sign)
	}
	return s, nil
}

// maxTokenKeys bounds the keys a token is verified against.
const maxTokenKeys = 8

// xorVisitor encrypts or decrypts b in place: AES-CTR under key k, counter
// starting at the impression id.
func (s *signer) xorVisitor(sc *tokenScratch, k int, imp *event.ID, b []byte) {
	sc.ctr = *imp
	for off := 0; off < len(b); off += aes.BlockSize {
		s.ciphs[k].Encrypt(sc.ks[:], sc.ctr[:])
		subtle.XORBytes(b[off:], b[off:], sc.ks[:])
		binary.BigEndian.PutUint32(sc.ctr[12:], binary.BigEndian.Uint32(sc.ctr[12:])+1)
	}
}

// Append appends the URL-safe text of t, signed, to dst.
func (s *signer) Append(dst []byte, t *Token) []byte {
	sc := s.bufs.Get().(*tokenScratch)
	b := s.body(sc, t.Kind, t)
	if t.Kind == TokenClick {
		b = appendLanding(b, t.Landing)
	}
	dst, sc.b = s.seal(dst, b)
	s.bufs.Put(sc)
	return dst
}

// AppendPair appends t's click token to click and its impression token to
// imp (t.Kind aside), as Append would, building and encrypting the shared
// part once: /ad signs both for every ad.
func (s *signer) AppendPair(click, imp []byte, t *Token) ([]byte, []byte) {
	sc := s.bufs.Get().(*tokenScratch)
	b := s.body(sc, TokenImpression, t)
	n := len(b)
	imp, b = s.seal(imp, b)
	b = b[:n]
	b[1] = byte(TokenClick)
	b = appendLanding(b, t.Landing)
	click, sc.b = s.seal(click, b)
	s.bufs.Put(sc)
	return click, imp
}

// body writes t's token bytes as kind into sc, up to the landing URL, the
// visitor encrypted.
func (s *signer) body(sc *tokenScratch, kind TokenKind, t *Token) []byte {
	b := sc.b[:0]
	b = append(b, tokenVersion, byte(kind), s.ids[s.sign])
	b = binary.BigEndian.AppendUint64(b, uint64(t.Issued))
	b = append(b, t.Imp[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(t.Consent))
	for _, f := range [...]string{t.Campaign, t.Creative, t.Site, t.Slot} {
		b = appendShort(b, f)
	}
	at := len(b) + 1
	b = appendShort(b, t.Visitor)
	s.xorVisitor(sc, s.sign, &t.Imp, b[at:])
	return b
}

func appendLanding(b []byte, landing string) []byte {
	landing = landing[:min(len(landing), maxURL)]
	b = binary.BigEndian.AppendUint16(b, uint16(len(landing)))
	return append(b, landing...)
}

// seal appends b with its MAC to dst as URL-safe text; it returns b grown
// by the MAC, for the scratch to keep.
func (s *signer) seal(dst, b []byte) ([]byte, []byte) {
	m := s.macs[s.sign].Get().(hash.Hash)
	m.Reset()
	m.Write(b)
	b = m.Sum(b)
	s.macs[s.sign].Put(m)
	return b64.AppendEncode(dst, b), b
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
	sc := s.bufs.Get().(*tokenScratch)
	defer s.bufs.Put(sc)
	b, err := b64.AppendDecode(sc.b[:0], text)
	sc.b = b[:0]
	if err != nil || len(b) < tokenHead+macLen {
		return t, ErrBadToken
	}
	body, mac := b[:len(b)-macLen], b[len(b)-macLen:]
	version := body[0]
	if version != tokenVersion && version != tokenClearV1 || TokenKind(body[1]) != kind || s.byID[body[2]] == 0 {
		return t, ErrBadToken
	}
	k := int(s.byID[body[2]]) - 1
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
	for i, f := range [...]*string{&t.Campaign, &t.Creative, &t.Site, &t.Slot, &t.Visitor} {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return Token{}, ErrBadToken
		}
		n := 1 + int(rest[0])
		if i == 4 { // the visitor
			if version == tokenVersion {
				s.xorVisitor(sc, k, &t.Imp, rest[1:n])
				*f = string(rest[1:n])
			}
		} else {
			*f = string(rest[1:n])
		}
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
