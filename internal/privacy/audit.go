package privacy

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/adsyn/adsyn/internal/event"
)

// Rules a finding breaks.
const (
	RuleSensitive = "P1 sensitive term"
	RuleContact   = "P2 contact data"
	RuleQuery     = "P2 query or fragment outside the allowlist"
	RuleIP        = "P6 full IP address"
	RuleField     = "P2 malformed field" // an area or OS version of the wrong shape
)

// Finding is one breach in stored data. It says where and what kind, never
// the value itself: an audit's output must not leak what it found.
type Finding struct {
	Store string // stream, bucket or object store
	Key   string // sequence or key
	Field string
	Rule  string
	What  string // the category, or email / phone / ip
}

func (f Finding) String() string {
	return fmt.Sprintf("%s %s %s: %s (%s)", f.Store, f.Key, f.Field, f.Rule, f.What)
}

// Auditor checks stored data for breaches of P1, P2 and P6 with the choke
// point's own rules. It is not safe for concurrent use.
type Auditor struct {
	s        *Scrubber
	sc       Scratch
	findings []Finding
	scanned  map[string]int
}

// NewAuditor returns an Auditor with the choke point's options.
func NewAuditor(opts Options) (*Auditor, error) {
	s, err := New(opts)
	if err != nil {
		return nil, err
	}
	return &Auditor{s: s, scanned: map[string]int{}}, nil
}

func (a *Auditor) add(store, key, field, rule, what string) {
	a.findings = append(a.findings, Finding{Store: store, Key: key, Field: field, Rule: rule, What: what})
}

// Count notes n items scanned in store, for the summary.
func (a *Auditor) Count(store string, n int) { a.scanned[store] += n }

// Signal checks a stored signal (an event's or a visitor record's text):
// no sensitive term (P1), no contact data (P2), no IP address (P6).
func (a *Auditor) Signal(store, key, field, text string) {
	d := a.sc.decode(text, false)
	if cat, bad := a.s.guard.SensitiveBytes(d); bad {
		a.add(store, key, field, RuleSensitive, cat)
	}
	a.contact(store, key, field, d)
}

// Record checks a stored text outside the signals (profiles' public fields,
// partner views, the feed, the delivery log): no contact data, no IP
// address. A user's own competence may well name a health profession, so
// P1, which is about signals, does not apply.
func (a *Auditor) Record(store, key, field, text string) {
	a.contact(store, key, field, a.sc.decode(text, false))
}

func (a *Auditor) contact(store, key, field string, d []byte) {
	for len(d) > 0 {
		s, e, k := FindContact(d)
		if k == KindNone {
			return
		}
		if k != KindIP || !harmlessIP(d[s:e]) {
			rule := RuleContact
			if k == KindIP {
				rule = RuleIP
			}
			a.add(store, key, field, rule, k.String())
			return
		}
		d = d[e:]
	}
}

// harmlessIP reports loopback and unspecified addresses, which name no one
// (a partner endpoint's error says "dial tcp 127.0.0.1:…").
func harmlessIP(b []byte) bool {
	ip, err := netip.ParseAddr(string(b))
	return err == nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// Event checks a stored event field by field, as the choke point leaves it:
// whatever Scrub would still change is a finding.
func (a *Auditor) Event(store, key string, e *event.Event) {
	for _, f := range []struct{ name, v string }{
		{"query", e.Query}, {"site", e.Site}, {"slot", e.Slot}, {"campaign", e.Campaign}, {"creative", e.Creative},
		{"name", e.Name}, {"lang", e.Lang}, {"country", e.Country}, {"device.type", e.Device.Type},
		{"device.os", e.Device.OS}, {"device.model", e.Device.Model},
	} {
		if f.v != "" {
			a.Signal(store, key, f.name, f.v)
		}
	}
	for i, c := range e.Categories {
		a.Signal(store, key, "categories["+strconv.Itoa(i)+"]", c)
	}
	for _, f := range []struct{ name, v string }{{"url", e.URL}, {"referrer", e.Referrer}} {
		if f.v == "" {
			continue
		}
		n := len(a.findings)
		a.Signal(store, key, f.name, f.v)
		if len(a.findings) == n && a.s.URL(&a.sc, f.v) != f.v {
			a.add(store, key, f.name, RuleQuery, "url")
		}
	}
	if e.IP != "" && a.s.ip(&a.sc, e.IP) != e.IP {
		a.add(store, key, "ip", RuleIP, "ip")
	}
	if !validArea(e.Area) {
		a.add(store, key, "area", RuleField, "area")
	}
	if !validVersion(e.Device.OSVersion) {
		a.add(store, key, "device.os_version", RuleField, "os version")
	}
	a.sc.out = a.sc.out[:0]
}

// JSON checks every string of a JSON document as a record text, its field
// named by its path ("a.b[2]"). Timestamps are skipped, and so are the
// fields named in skip: sealed values and generated ids, which are no text.
func (a *Auditor) JSON(store, key string, data []byte, skip ...string) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		a.Record(store, key, "(not JSON)", string(data))
		return
	}
	a.walk(store, key, "", v, skip)
}

func (a *Auditor) walk(store, key, path string, v any, sealed []string) {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			x := v[k]
			p := k
			if path != "" {
				p = path + "." + k
			}
			skip := false
			for _, s := range sealed {
				skip = skip || s == p
			}
			if !skip {
				a.walk(store, key, p, x, sealed)
			}
		}
	case []any:
		for i, x := range v {
			a.walk(store, key, path+"["+strconv.Itoa(i)+"]", x, sealed)
		}
	case string:
		if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return
		}
		a.Record(store, key, path, v)
	}
}

// Findings returns what was found, in order.
func (a *Auditor) Findings() []Finding { return a.findings }

// Summary says what was scanned: "ADSYN_EVENTS 120, adsyn_segments 3, …".
func (a *Auditor) Summary() string {
	stores := make([]string, 0, len(a.scanned))
	for s := range a.scanned {
		stores = append(stores, s)
	}
	sort.Strings(stores)
	var b strings.Builder
	for i, s := range stores {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", s, a.scanned[s])
	}
	return b.String()
}
