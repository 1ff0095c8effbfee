package adserver

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrInvalid wraps every validation failure of the campaign model.
	ErrInvalid = errors.New("adserver: invalid")
	// ErrSensitive is a targeting rule on a sensitive category (P1).
	ErrSensitive = errors.New("adserver: sensitive category")
	// ErrNotFound is a missing advertiser, campaign, creative or site.
	ErrNotFound = errors.New("adserver: not found")
	// ErrExists is a create of an id already taken.
	ErrExists = errors.New("adserver: already exists")
	// ErrConflict is an update against a stale revision.
	ErrConflict = errors.New("adserver: revision conflict")
	// ErrBadToken is a click or impression token that is malformed, forged or altered.
	ErrBadToken = errors.New("adserver: bad token")
	// ErrExpiredToken is an authentic token past its lifetime.
	ErrExpiredToken = errors.New("adserver: expired token")
)

// Status is the life state of an advertiser, campaign, creative or site.
type Status string

const (
	Active   Status = "active"
	Paused   Status = "paused"
	Archived Status = "archived"
)

func (s Status) valid() bool { return s == Active || s == Paused || s == Archived }

// Advertiser is an account that buys campaigns. Marketer keys are bound to one
// (the key's Owner is the advertiser id).
type Advertiser struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Domain string `json:"domain,omitempty"`
	Status Status `json:"status,omitempty"`
}

// Campaign says what to show, to whom, when, and at what price.
type Campaign struct {
	ID         string    `json:"id"`
	Advertiser string    `json:"advertiser"`
	Name       string    `json:"name"`
	Status     Status    `json:"status,omitempty"`
	Start      time.Time `json:"start"`           // flight start
	End        time.Time `json:"end,omitzero"`    // flight end, exclusive; zero: open
	Priority   int       `json:"priority"`        // tier: 1 (highest) to 16; 0 means DefaultPriority
	CPM        float64   `json:"cpm"`             // bid per thousand impressions, in the account currency
	Weight     int       `json:"weight,omitzero"` // share among campaigns of equal tier and eCPM; 0 means 1
	Budget     Budget    `json:"budget,omitzero"`
	Caps       []FreqCap `json:"frequency_caps,omitempty"`
	DayParts   []DayPart `json:"day_parts,omitempty"`
	Timezone   string    `json:"timezone,omitempty"` // IANA name for day-parting; default UTC
	Targeting  Targeting `json:"targeting,omitzero"`
	// TrackingNumbers are the phone numbers this campaign's ads show; a
	// call to one is a conversion of the campaign (call tracking).
	TrackingNumbers []string `json:"tracking_numbers,omitempty"`
}

// DefaultPriority is the tier of a campaign that names none.
const DefaultPriority = 8

// BudgetUnit is what a budget counts.
type BudgetUnit string

const (
	Impressions BudgetUnit = "impressions"
	Money       BudgetUnit = "money"
)

// Budget limits delivery; a zero amount means no limit. Daily budgets are
// delivered evenly across the UTC day (over its open hours when day-parted).
type Budget struct {
	Unit  BudgetUnit `json:"unit,omitempty"`
	Total float64    `json:"total,omitzero"`
	Daily float64    `json:"daily,omitzero"`
}

// FreqCap allows at most Count impressions per visitor within Window.
type FreqCap struct {
	Count  int      `json:"count"`
	Window Duration `json:"window"`
}

// Duration is a time.Duration written as "24h", "90m".
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%w: duration %q (write it like 24h or 90m)", ErrInvalid, b)
	}
	*d = Duration(v)
	return nil
}

// DayPart opens delivery on Days (mon…sun; empty: every day) from hour From
// (0-23) to hour To (1-24, exclusive), in the campaign's timezone.
type DayPart struct {
	Days []string `json:"days,omitempty"`
	From int      `json:"from"`
	To   int      `json:"to"`
}

// List includes or excludes values; an empty Include means any.
type List struct {
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// SegmentRule targets a visitor's interest segments: at least one of Any, all
// of All, none of None. Segments are personal data: a campaign with Any or All
// is only served with consent to personalization (P3).
type SegmentRule struct {
	Any  []string `json:"any,omitempty"`
	All  []string `json:"all,omitempty"`
	None []string `json:"none,omitempty"`
}

// Targeting narrows who and where. Slots are written "site/slot"; countries
// are ISO 3166-1 alpha-2 codes or ISO 3166-2 regions ("DE", "DE-BY");
// languages are primary subtags ("de"); devices are desktop, mobile, tablet, tv.
type Targeting struct {
	Segments   SegmentRule `json:"segments,omitzero"`
	Languages  List        `json:"languages,omitzero"`
	Countries  List        `json:"countries,omitzero"`
	Devices    List        `json:"devices,omitzero"`
	Sites      List        `json:"sites,omitzero"`
	Slots      List        `json:"slots,omitzero"`
	Categories List        `json:"categories,omitzero"` // page or site categories (contextual)
}

// CreativeType is how a creative renders.
type CreativeType string

const (
	Image   CreativeType = "image"
	HTML    CreativeType = "html"
	Native  CreativeType = "native"
	Profile CreativeType = "profile" // a registered user's public profile card
)

// Creative is one ad of a campaign.
type Creative struct {
	ID         string       `json:"id"`
	Advertiser string       `json:"advertiser"`
	Campaign   string       `json:"campaign"`
	Name       string       `json:"name,omitempty"`
	Status     Status       `json:"status,omitempty"`
	Type       CreativeType `json:"type"`
	Sizes      []string     `json:"sizes,omitempty"` // "300x250"; native creatives fit native slots
	Weight     int          `json:"weight,omitzero"`
	Landing    string       `json:"landing"` // http(s) URL the click goes to
	Content
	// ProfileUser is the user whose public profile a Profile creative shows,
	// only while that user allows advertising use of it (P2: never contact details).
	ProfileUser string `json:"profile_user,omitempty"`
	// Variants replace Content (and Landing, when set) for a language.
	Variants map[string]Variant `json:"variants,omitempty"`
}

// Content is what a creative shows.
type Content struct {
	Image  string    `json:"image,omitempty"` // http(s) URL or data:image/… URI
	Alt    string    `json:"alt,omitempty"`
	HTML   string    `json:"html,omitempty"` // rendered in a sandboxed iframe
	Native *NativeAd `json:"native,omitempty"`
}

// NativeAd holds the fields a native slot lays out.
type NativeAd struct {
	Title   string `json:"title"`
	Body    string `json:"body,omitempty"`
	Image   string `json:"image,omitempty"`
	Icon    string `json:"icon,omitempty"`
	CTA     string `json:"cta,omitempty"`
	Sponsor string `json:"sponsor,omitempty"`
}

// Variant is a creative's content in one language.
type Variant struct {
	Content
	Landing string `json:"landing,omitempty"`
}

// Site is a publisher's property with its ad slots. Publisher keys are bound
// to a publisher id (the key's Owner), which owns its sites.
type Site struct {
	ID        string `json:"id"`
	Publisher string `json:"publisher"`
	Name      string `json:"name"`
	Domain    string `json:"domain,omitempty"` // the main one; Validate adds it to Domains when it is a host name
	// Domains are the host names the site's pages are on: /ad answers a
	// page of one of them, or of a subdomain, with credentialed CORS.
	Domains    []string `json:"domains,omitempty"`
	Status     Status   `json:"status,omitempty"`
	Categories []string `json:"categories,omitempty"` // contextual categories of every page
	Slots      []Slot   `json:"slots"`
}

// Slot is one place for an ad on a site's pages.
type Slot struct {
	ID     string   `json:"id"`
	Name   string   `json:"name,omitempty"`
	Sizes  []string `json:"sizes,omitempty"`
	Native bool     `json:"native,omitempty"`
}
