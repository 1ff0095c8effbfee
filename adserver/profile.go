package adserver

import (
	"context"
	"strings"
	"time"

	"github.com/adsyn/adsyn/internal/profiles"
)

// ProfileCard is what a profile creative shows of a registered user: the
// public view partners get, and nothing else. It has no field for contact
// details or the resume, so none can reach an ad (P2).
type ProfileCard struct {
	Name       string `json:"name"`
	Photo      string `json:"photo,omitempty"` // http(s) URL or data:image/… URI
	Competence string `json:"competence,omitempty"`
	Price      string `json:"price,omitempty"` // as the user wrote it, e.g. "from 40 EUR/h"
	URL        string `json:"url,omitempty"`   // the public profile page; used as landing when set
}

// ProfileSource gives the latest profile of a user, contact fields sealed;
// an unknown or erased user is an error. internal/profiles satisfies it.
type ProfileSource interface {
	Latest(ctx context.Context, userID string) (*profiles.Profile, error)
}

// profileTimeout bounds one profile read on the edge: a slow store costs
// the ad (204), not the page.
const profileTimeout = 100 * time.Millisecond

// profileCards turns a ProfileSource into the cards of profile creatives:
// only a user who allows advertising use of their public profile has one
// (profiles.PublicView), and only with their public fields. Links are made
// absolute under publicURL, the API's public origin.
func profileCards(ctx context.Context, src ProfileSource, publicURL string) func(string) (ProfileCard, bool) {
	publicURL = strings.TrimRight(publicURL, "/")
	return func(userID string) (ProfileCard, bool) {
		if !profiles.ValidID(userID) {
			return ProfileCard{}, false
		}
		rctx, cancel := context.WithTimeout(ctx, profileTimeout)
		defer cancel()
		p, err := src.Latest(rctx, userID)
		if err != nil {
			return ProfileCard{}, false
		}
		v := profiles.PublicView(p)
		if v.Name == "" {
			return ProfileCard{}, false
		}
		card := ProfileCard{Name: v.Name, Competence: strings.Join(v.Competence, ", "), URL: publicURL + "/v1/profiles/" + v.ID}
		if v.Photo != "" {
			card.Photo = publicURL + v.Photo
		}
		if v.Price != nil {
			card.Price = v.Price.Amount + " " + v.Price.Currency
		}
		return card, true
	}
}
