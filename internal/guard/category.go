package guard

import "slices"

// The sensitive categories (P1: GDPR art. 9 and 10, and adsyn's own
// hardship rule). A lexicon's sections are named after them.
const (
	Health            = "health"
	Religion          = "religion"
	EthnicOrigin      = "ethnic_origin"
	SexualOrientation = "sexual_orientation"
	PoliticalOpinion  = "political_opinion"
	TradeUnion        = "trade_union"
	GeneticBiometric  = "genetic_biometric"
	CriminalRecord    = "criminal_record"
	PersonalHardship  = "personal_hardship"
)

var categories = []string{
	CriminalRecord, EthnicOrigin, GeneticBiometric, Health, PersonalHardship,
	PoliticalOpinion, Religion, SexualOrientation, TradeUnion,
}

// Categories returns the sensitive categories, sorted.
func Categories() []string { return slices.Clone(categories) }

// IsCategory reports whether name is a sensitive category.
func IsCategory(name string) bool { return slices.Contains(categories, name) }
