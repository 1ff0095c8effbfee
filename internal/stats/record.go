package stats

import (
	"time"

	"github.com/adsyn/adsyn/internal/stats/tally"
)

// Records, their counters and breakdowns belong to the pure core in
// internal/stats/tally; these names keep the package's API as it was.
type (
	Counters = tally.Counters
	Scope    = tally.Scope
	Dim      = tally.Dim
	Record   = tally.Record
)

const (
	ScopeCampaign = tally.ScopeCampaign
	ScopeSite     = tally.ScopeSite

	DimCreative = tally.DimCreative
	DimSite     = tally.DimSite
	DimCampaign = tally.DimCampaign
	DimSlot     = tally.DimSlot
	DimLanguage = tally.DimLanguage
	DimCountry  = tally.DimCountry
	DimDevice   = tally.DimDevice

	Other       = tally.Other
	MaxClickIDs = tally.MaxClickIDs
)

// ParseDim returns the dimension named s.
func ParseDim(s string) (Dim, bool) { return tally.ParseDim(s) }

// ValidID reports whether s may be a campaign or site id in a record key.
func ValidID(s string) bool { return tally.ValidID(s) }

// Key returns the key of scope s's record for id in the hour of t.
func Key(s Scope, id string, t time.Time) string { return tally.Key(s, id, t) }

// DecodeRecord decodes a stored record with every dimension.
func DecodeRecord(b []byte) (*Record, error) { return tally.DecodeRecord(b) }
