package consent

// Grants returns the activities TC string tc allows for vendorID (adsyn's
// IAB vendor id). It reads only what it needs, straight from the base64
// text, and allocates nothing. A string that fails to parse or fails Valid
// grants nothing; LinkIdentity never comes from TCF.
//
// Each activity needs its purpose on a legal basis for our vendor: consent
// (purpose consent and vendor consent) or, where the activity allows it,
// legitimate interest (purpose LI transparency and vendor LI):
//
//	StoreOnDevice  purpose 1, consent
//	Contextual     purpose 2, consent or LI
//	BuildProfile   purpose 3, consent
//	Personalize    purpose 4, consent
//	Measure        purpose 7, consent or LI
//
// Publisher restrictions naming our vendor: type 0 (not allowed) removes the
// purpose; type 1 (require consent) rules out LI for it; type 2 (require LI)
// rules out consent for it.
func Grants(tc []byte, vendorID int) Set {
	if vendorID < 1 || vendorID > maxVendor {
		return 0
	}
	b, f := parse(tc, vendorID, nil)
	if f.err != nil {
		return 0
	}
	return b.set()
}

// basis is what a TC string says about one vendor, reduced to what the grant
// rules read. Both Grants and TCString.Grants build one, then call set.
type basis struct {
	consent, li                           Bits // purposes
	vendorConsent, vendorLI               bool
	notAllowed, requireConsent, requireLI Bits // purposes restricted for the vendor
}

func (b *basis) restrict(purpose int, t RestrictionType) {
	switch t {
	case NotAllowed:
		b.notAllowed = b.notAllowed.With(purpose)
	case RequireConsent:
		b.requireConsent = b.requireConsent.With(purpose)
	case RequireLI:
		b.requireLI = b.requireLI.With(purpose)
	}
}

func (b *basis) byConsent(p int) bool {
	return b.consent.Has(p) && b.vendorConsent && !b.notAllowed.Has(p) && !b.requireLI.Has(p)
}

func (b *basis) byLI(p int) bool {
	return b.li.Has(p) && b.vendorLI && !b.notAllowed.Has(p) && !b.requireConsent.Has(p)
}

// grantRules maps each activity TCF can grant to its purpose.
var grantRules = [...]struct {
	activity Activity
	purpose  int
	liOK     bool
}{
	{StoreOnDevice, 1, false},
	{Contextual, 2, true},
	{BuildProfile, 3, false},
	{Personalize, 4, false},
	{Measure, 7, true},
}

func (b *basis) set() Set {
	var s Set
	for _, g := range grantRules {
		if b.byConsent(g.purpose) || g.liOK && b.byLI(g.purpose) {
			s = s.With(g.activity)
		}
	}
	return s
}
