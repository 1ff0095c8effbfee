package taxonomy

import (
	"slices"

	"github.com/adsyn/adsyn/internal/guard"
)

// Category is what a segment is about, from a closed list. The sensitive
// categories exist so that error messages can name them: no segment may
// have one (P1).
type Category string

// The categories a segment may have.
const (
	CategoryHome      Category = "home"      // repair, renovation, installation
	CategoryHousehold Category = "household" // cleaning, gardening, child and pet care
	CategoryEducation Category = "education" // tutoring, courses, lessons
	CategoryIT        Category = "it"        // development, support, networks
	CategoryCreative  Category = "creative"  // design, photo, video, writing
	CategoryBeauty    Category = "beauty"    // hair, nails, make-up (not medical)
	CategoryEvents    Category = "events"    // weddings, parties, catering
	CategoryMoving    Category = "moving"    // movers, delivery, storage
	CategoryLegal     Category = "legal"     // contracts, companies, property, IP
	CategoryFinance   Category = "finance"   // accounting, tax, audit
	CategoryAuto      Category = "auto"      // repair, tyres, detailing
	CategoryBusiness  Category = "business"  // marketing, translation, consulting
	CategorySports    Category = "sports"    // coaching and lessons (not medical)
	CategoryTravel    Category = "travel"    // guides, transfers
	CategoryLanguage  Category = "language"  // the visitor's language
	CategoryGeneral   Category = "general"   // anything else that is not sensitive
)

// The sensitive categories (P1, GDPR art. 9 and 10, and our own hardship
// rule): the guard's.
const (
	CategoryHealth            Category = guard.Health
	CategoryReligion          Category = guard.Religion
	CategoryEthnicOrigin      Category = guard.EthnicOrigin
	CategorySexualOrientation Category = guard.SexualOrientation
	CategoryPoliticalOpinion  Category = guard.PoliticalOpinion
	CategoryTradeUnion        Category = guard.TradeUnion
	CategoryGeneticBiometric  Category = guard.GeneticBiometric
	CategoryCriminalRecord    Category = guard.CriminalRecord
	CategoryPersonalHardship  Category = guard.PersonalHardship
)

var allowedCategories = []Category{
	CategoryHome, CategoryHousehold, CategoryEducation, CategoryIT, CategoryCreative,
	CategoryBeauty, CategoryEvents, CategoryMoving, CategoryLegal, CategoryFinance,
	CategoryAuto, CategoryBusiness, CategorySports, CategoryTravel, CategoryLanguage,
	CategoryGeneral,
}

// sensitiveReasons says why each sensitive category is refused.
var sensitiveReasons = map[Category]string{
	CategoryHealth:            "health data, medical and psychological services included (GDPR art. 9)",
	CategoryReligion:          "religious or philosophical beliefs (GDPR art. 9)",
	CategoryEthnicOrigin:      "racial or ethnic origin (GDPR art. 9)",
	CategorySexualOrientation: "sex life or sexual orientation (GDPR art. 9)",
	CategoryPoliticalOpinion:  "political opinions (GDPR art. 9)",
	CategoryTradeUnion:        "trade-union membership (GDPR art. 9)",
	CategoryGeneticBiometric:  "genetic or biometric data (GDPR art. 9)",
	CategoryCriminalRecord:    "criminal convictions and offences (GDPR art. 10)",
	CategoryPersonalHardship:  "personal hardship: debt, bereavement, divorce, unemployment (adsyn policy)",
}

// Categories returns the categories a segment may have.
func Categories() []Category { return slices.Clone(allowedCategories) }

// SensitiveCategories returns the categories no segment may have, sorted.
func SensitiveCategories() []Category {
	out := make([]Category, 0, len(sensitiveReasons))
	for c := range sensitiveReasons {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// Sensitive reports whether c is a sensitive category.
func (c Category) Sensitive() bool {
	_, ok := sensitiveReasons[c]
	return ok
}

// Valid reports whether a segment may have c.
func (c Category) Valid() bool { return slices.Contains(allowedCategories, c) }

// Reason says why a sensitive category is refused; "" for the others.
func (c Category) Reason() string { return sensitiveReasons[c] }
