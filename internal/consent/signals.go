package consent

// Where the signals arrive.
const (
	// GPCHeader is the Global Privacy Control request header.
	GPCHeader = "Sec-GPC"
	// OptOutCookie names the cookie /optout sets; its value is "1".
	OptOutCookie = "adsyn_optout"
	// GDPRParam and ConsentParam are the query parameters ad tags fill from
	// the IAB macros ${GDPR} and ${GDPR_CONSENT_<vendor id>}.
	GDPRParam    = "gdpr"
	ConsentParam = "gdpr_consent"
)

// Signals are a request's privacy signals, as the edge read them.
type Signals struct {
	// GDPRApplies is the gdpr parameter: -1 unknown, 0 no, 1 yes. Any other
	// value counts as unknown.
	GDPRApplies int8
	// TCString is the TC string (gdpr_consent or the euconsent-v2 cookie).
	// It is only read during Evaluate, so it may alias a request buffer.
	TCString []byte
	GPC      bool // Sec-GPC: 1
	OptOut   bool // the opt-out cookie
	InRegion bool // the request comes from a configured GDPR region
}

// Policy is the operator's part of the decision.
type Policy struct {
	VendorID      int  // adsyn's IAB vendor id
	GDPRByDefault bool // treat unknown scope as GDPR scope
}

// personal are the activities an opt-out (GPC, the opt-out cookie) removes:
// those that follow the person across contexts.
const personal Set = 1<<StoreOnDevice | 1<<BuildProfile | 1<<Personalize

// Evaluate turns a request's signals into the activities allowed for it (P3).
// In GDPR scope (gdpr=1, a configured region, or unknown scope when the
// policy says so) it is exactly what the TC string grants our vendor, so a
// missing or bad string allows nothing. Outside it everything but
// LinkIdentity is allowed. An opt-out (GPC or the cookie) leaves only
// Contextual and Measure, in GDPR scope too: a person who says "do not track
// me across sites" is not profiled because a CMP string says otherwise (fail
// closed). LinkIdentity never comes from here: it is the user's
// account setting (P4). Evaluate allocates nothing.
func Evaluate(s Signals, p Policy) Set {
	var out Set
	if s.GDPRApplies == 1 || s.InRegion || s.GDPRApplies != 0 && p.GDPRByDefault {
		out = Grants(s.TCString, p.VendorID)
	} else {
		out = All.Without(LinkIdentity)
	}
	if s.GPC || s.OptOut {
		out &^= personal
	}
	return out
}

// GPC reports whether a Sec-GPC header value asks for opt-out: exactly "1".
func GPC(headerValue []byte) bool { return len(headerValue) == 1 && headerValue[0] == '1' }

// OptedOut reports whether the opt-out cookie's value says so: exactly "1".
func OptedOut(cookieValue []byte) bool { return len(cookieValue) == 1 && cookieValue[0] == '1' }

// ParseGDPR reads the gdpr parameter: "1" is 1, "0" is 0, anything else
// (absent, empty, an unfilled macro) is -1, unknown.
func ParseGDPR(v []byte) int8 {
	if len(v) == 1 && (v[0] == '0' || v[0] == '1') {
		return int8(v[0] - '0')
	}
	return -1
}
