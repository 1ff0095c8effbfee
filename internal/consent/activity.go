package consent

// Activity is one thing the system may do with a person's data. The set is
// closed: every flow that touches personal data asks Set.Allow for exactly one.
type Activity uint8

const (
	// StoreOnDevice is reading or writing the visitor cookie (TCF purpose 1).
	StoreOnDevice Activity = iota
	// Contextual is selecting basic, non-personalized ads (TCF purpose 2).
	Contextual
	// BuildProfile is adding the visitor's events to an interest profile (TCF purpose 3).
	BuildProfile
	// Personalize is selecting ads from that profile (TCF purpose 4).
	Personalize
	// Measure is counting ad performance (TCF purpose 7).
	Measure
	// LinkIdentity is joining the visitor cookie to a registered account (P4).
	LinkIdentity
	numActivities
)

var activityNames = [numActivities]string{
	StoreOnDevice: "store_on_device",
	Contextual:    "contextual",
	BuildProfile:  "build_profile",
	Personalize:   "personalize",
	Measure:       "measure",
	LinkIdentity:  "link_identity",
}

func (a Activity) String() string {
	if a < numActivities {
		return activityNames[a]
	}
	return "unknown"
}

// Set is the bit set of activities allowed for one request. It is the consent
// snapshot carried by every event. The zero Set allows nothing (fail closed).
type Set uint16

// All allows every activity; for tests and for operators' own traffic only.
const All Set = 1<<numActivities - 1

// Allow reports whether a is permitted.
func (s Set) Allow(a Activity) bool { return a < numActivities && s&(1<<a) != 0 }

// With returns s with a permitted.
func (s Set) With(a Activity) Set {
	if a >= numActivities {
		return s
	}
	return s | 1<<a
}

// Without returns s with a refused.
func (s Set) Without(a Activity) Set {
	if a >= numActivities {
		return s
	}
	return s &^ (1 << a)
}

// Names lists the permitted activities, for logs and the operator's views.
func (s Set) Names() []string {
	var out []string
	for a := Activity(0); a < numActivities; a++ {
		if s.Allow(a) {
			out = append(out, a.String())
		}
	}
	return out
}
