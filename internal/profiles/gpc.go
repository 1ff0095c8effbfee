package profiles

import (
	"context"
	"errors"
	"net/http"

	"github.com/adsyn/adsyn/internal/auth"
)

// Global Privacy Control is decided here and nowhere else. A request of the
// signed-in data subject that carries it (Sec-GPC: 1) withdraws gpcPurposes,
// recorded with source "gpc" so partners get their deletions (P5). It is
// not an erasure. A PATCH carries the withdrawal in its own write (one
// revision, one change on the feed); other requests make one write first,
// and only when something is left to withdraw.

// gpcPurposes are what Global Privacy Control opts out of: sharing the
// person's data with partners and ads targeted across contexts.
var gpcPurposes = []Purpose{Syndication, PersonalizedAds}

// gpcSource is the consent source of a withdrawal GPC made.
const gpcSource = "gpc"

// gpc reports whether r carries Global Privacy Control (exactly "1").
func gpc(r *http.Request) bool { return r.Header.Get("Sec-GPC") == "1" }

// subjectGPC reports whether r carries GPC from the browser of user id
// itself: a staff member's browser speaks for nobody else.
func subjectGPC(r *http.Request, id string) bool {
	if !gpc(r) {
		return false
	}
	p, _ := auth.FromContext(r.Context())
	return p.Role == auth.User && p.Owner == id
}

// grantsGPCPurpose returns a purpose GPC opts out of that a PATCH sent with
// GPC grants: refused, since the browser says the opposite.
func grantsGPCPurpose(r *http.Request, pt *Patch) (Purpose, bool) {
	if !gpc(r) {
		return "", false
	}
	for _, purpose := range gpcPurposes {
		if pt.Consents[purpose] {
			return purpose, true
		}
	}
	return "", false
}

// gpcWithdrawal returns the consents GPC withdraws from p; nil when p
// grants none of gpcPurposes.
func gpcWithdrawal(p *Profile) map[Purpose]bool {
	var withdraw map[Purpose]bool
	for _, purpose := range gpcPurposes {
		if p.Consented(purpose) {
			if withdraw == nil {
				withdraw = map[Purpose]bool{}
			}
			withdraw[purpose] = false
		}
	}
	return withdraw
}

// gpcFirst honours GPC of the data subject before next serves the request.
func (h *Handler) gpcFirst(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if id := r.PathValue("id"); subjectGPC(r, id) {
			if _, err := h.store.HonourGPC(r.Context(), id, nil, ""); err != nil {
				h.fail(w, err)
				return
			}
		}
		next(w, r)
	}
}

// gpcAlone honours GPC of the data subject when their request is refused
// otherwise; the refusal is the answer, so a failure here is only logged.
func (h *Handler) gpcAlone(r *http.Request, id string) {
	if !subjectGPC(r, id) {
		return
	}
	if _, err := h.store.HonourGPC(r.Context(), id, nil, ""); err != nil && !errors.Is(err, ErrNotFound) {
		h.log.Error("profiles: Global Privacy Control not honoured", "user", id, "err", err)
	}
}

// HonourGPC withdraws what Global Privacy Control opts out of and applies
// pt (when not nil, stated by source) in the same write. With nothing to
// withdraw and no pt, nothing is written.
func (s *Store) HonourGPC(ctx context.Context, id string, pt *Patch, source string) (*Profile, error) {
	if pt == nil {
		p, err := s.Get(ctx, id)
		if err != nil || gpcWithdrawal(p) == nil {
			return p, err
		}
	}
	withdrew := 0
	p, err := s.update(ctx, id, func(p *Profile) error {
		now := s.now()
		withdraw := gpcWithdrawal(p)
		withdrew = len(withdraw)
		if withdraw != nil {
			if err := (&Patch{Consents: withdraw, ConsentSource: gpcSource}).Apply(p, now, gpcSource); err != nil {
				return err
			}
		}
		if pt == nil {
			return nil
		}
		return pt.Apply(p, now, source)
	})
	if err == nil && withdrew > 0 {
		s.opts.log.Info("profiles: Global Privacy Control withdrew consents", "user", id, "purposes", withdrew)
	}
	return p, err
}
