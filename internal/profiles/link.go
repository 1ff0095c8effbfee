package profiles

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/adsyn/adsyn/internal/ids"
	"log/slog"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// LinkTTL is how long a link token stays valid.
const LinkTTL = 10 * time.Minute

// maxLinkToken bounds a token read from a URL: a real one is under 200 bytes.
const maxLinkToken = 512

// Errors of linking a browser to an account (P4).
var (
	ErrLinkForged  = errors.New("profiles: link token not genuine")
	ErrLinkExpired = errors.New("profiles: link token expired")
	ErrLinkUsed    = errors.New("profiles: link token already used or replaced")
	ErrNoVisitor   = errors.New("profiles: this browser has no visitor cookie")
)

// linkKeys sign link tokens and hide the user id in them; both derive from
// one random secret kept in adsyn_user_keys, sealed by the keyring.
type linkKeys struct {
	mac []byte
	enc cipher.AEAD
}

func deriveLinkKeys(secret []byte) linkKeys {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	block, _ := aes.NewCipher(derive("adsyn link token encryption")) // 32 bytes: cannot fail
	enc, _ := cipher.NewGCM(block)
	return linkKeys{mac: derive("adsyn link token signature"), enc: enc}
}

const linkVersion = 1

// seal makes a token: base64url(version, nonce, expiry, user id encrypted
// under enc) "." base64url(HMAC-SHA256 of those bytes).
func (k linkKeys) seal(nonce [16]byte, exp time.Time, id string) string {
	head := make([]byte, 0, 1+16+8+len(id)+k.enc.Overhead())
	head = append(head, linkVersion)
	head = append(head, nonce[:]...)
	head = binary.BigEndian.AppendUint64(head, uint64(exp.Unix()))
	head = k.enc.Seal(head, nonce[:k.enc.NonceSize()], []byte(id), head[:25])
	m := hmac.New(sha256.New, k.mac)
	m.Write(head)
	return base64.RawURLEncoding.EncodeToString(head) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// open checks a token's signature and returns what it holds; it does not
// check the expiry.
func (k linkKeys) open(token string) (nonce string, exp time.Time, id string, err error) {
	if len(token) > maxLinkToken {
		return "", time.Time{}, "", ErrLinkForged
	}
	h, s, ok := strings.Cut(token, ".")
	head, err1 := base64.RawURLEncoding.Strict().DecodeString(h)
	sig, err2 := base64.RawURLEncoding.Strict().DecodeString(s)
	if !ok || err1 != nil || err2 != nil || len(head) < 25+k.enc.Overhead() || head[0] != linkVersion {
		return "", time.Time{}, "", ErrLinkForged
	}
	m := hmac.New(sha256.New, k.mac)
	m.Write(head)
	if !hmac.Equal(m.Sum(nil), sig) {
		return "", time.Time{}, "", ErrLinkForged
	}
	plain, err := k.enc.Open(nil, head[1:1+k.enc.NonceSize()], head[25:], head[:25])
	if err != nil || !ValidID(string(plain)) {
		return "", time.Time{}, "", ErrLinkForged
	}
	return hex.EncodeToString(head[1:17]), time.Unix(int64(binary.BigEndian.Uint64(head[17:25])), 0), string(plain), nil
}

func (s *Store) linkKeys(ctx context.Context) (linkKeys, error) {
	secret, err := s.keys.secret(ctx, "link")
	if err != nil {
		return linkKeys{}, err
	}
	return deriveLinkKeys(secret), nil
}

// IssueLink returns a single-use token that links the browser which opens
// it to user id, valid for LinkTTL. The user must consent to linking. The
// token's nonce is kept, sealed, in the profile: a newer token replaces it,
// redeeming clears it.
func (s *Store) IssueLink(ctx context.Context, id string) (string, time.Time, error) {
	keys, err := s.linkKeys(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	exp := s.now().Add(LinkTTL).Truncate(time.Second)
	_, err = s.update(ctx, id, func(p *Profile) error {
		if !p.Consented(LinkVisitor) {
			return fmt.Errorf("%w to link_visitor: grant it before linking a browser", ErrNoConsent)
		}
		p.linkNonce, p.linkExpires = hex.EncodeToString(nonce[:]), exp
		return nil
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return keys.seal(nonce, exp, id), exp, nil
}

// RedeemLink links visitor, read from the browser's own cookie, to the user
// the token names, and returns the user id. The token must be genuine,
// unexpired and the newest issued for that user, and not used yet; the
// user must still consent to linking.
func (s *Store) RedeemLink(ctx context.Context, token, visitor string) (string, error) {
	keys, err := s.linkKeys(ctx)
	if err != nil {
		return "", err
	}
	nonce, exp, id, err := keys.open(token)
	if err != nil {
		return "", err
	}
	if !s.now().Before(exp) {
		return "", ErrLinkExpired
	}
	if !ids.ValidVisitor(visitor) {
		return "", ErrNoVisitor
	}
	_, err = s.update(ctx, id, func(p *Profile) error {
		if p.linkNonce == "" || subtle.ConstantTimeCompare([]byte(p.linkNonce), []byte(nonce)) != 1 {
			return ErrLinkUsed
		}
		if !p.Consented(LinkVisitor) {
			return fmt.Errorf("%w to link_visitor", ErrNoConsent)
		}
		p.LinkedVisitor, p.linkNonce, p.linkExpires = visitor, "", time.Time{}
		p.Updated = s.now()
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return "", ErrLinkUsed // erased since
	}
	if err != nil {
		return "", err
	}
	return id, nil
}

// EdgeLink serves GET /link?t=TOKEN on the edge: the browser the signed-in
// user opened it in is linked to the account. The visitor id comes from
// that browser's own cookie, read by visitor (the composition root's cookie
// code), never from a parameter. Nothing from the request outlives it.
func EdgeLink(s *Store, visitor func(*fasthttp.RequestCtx) (string, bool), log *slog.Logger) fasthttp.RequestHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	answer := func(ctx *fasthttp.RequestCtx, status int, code, msg string) {
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.Response.Header.Set("Referrer-Policy", "no-referrer")
		ctx.SetContentType("application/json")
		ctx.SetStatusCode(status)
		var body any = map[string]any{"linked": true, "message": msg}
		if code != "" {
			body = map[string]any{"error": map[string]string{"code": code, "message": msg}}
		}
		b, _ := json.Marshal(body)
		ctx.SetBody(b)
	}
	return func(ctx *fasthttp.RequestCtx) {
		if !ctx.IsGet() {
			answer(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "use GET")
			return
		}
		token := string(ctx.QueryArgs().Peek("t"))
		if token == "" || len(token) > maxLinkToken {
			answer(ctx, fasthttp.StatusBadRequest, "invalid_token", "open the link your account page gave you; nothing was linked")
			return
		}
		v, ok := visitor(ctx)
		if !ok {
			v = ""
		}
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		user, err := s.RedeemLink(c, token, v)
		switch {
		case err == nil:
			log.Info("profiles: browser linked to an account", "user", user)
			answer(ctx, fasthttp.StatusOK, "", "this browser is now linked to your account")
		case errors.Is(err, ErrLinkForged):
			answer(ctx, fasthttp.StatusBadRequest, "invalid_token", "this link is not genuine; nothing was linked")
		case errors.Is(err, ErrLinkExpired), errors.Is(err, ErrLinkUsed):
			answer(ctx, fasthttp.StatusGone, "token_expired", "this link has expired or was already used; ask your account page for a new one; nothing was linked")
		case errors.Is(err, ErrNoVisitor):
			answer(ctx, fasthttp.StatusConflict, "no_cookie", "this browser has no ad cookie (cookies blocked or not consented to); nothing was linked")
		case errors.Is(err, ErrNoConsent):
			answer(ctx, fasthttp.StatusConflict, "consent_required", "linking needs your consent to link_visitor; nothing was linked")
		default:
			log.Error("profiles: link failed", "err", err)
			answer(ctx, fasthttp.StatusServiceUnavailable, "unavailable", "linking is unavailable now; retry; nothing was linked")
		}
	}
}
