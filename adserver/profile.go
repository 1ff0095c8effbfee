package adserver

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
