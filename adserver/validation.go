package adserver

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/adsyn/adsyn/internal/ids"
	"github.com/adsyn/adsyn/internal/phone"
	"github.com/adsyn/adsyn/internal/privacy"
)

// Validation of the campaign model: each Validate checks a record, fills
// its defaults and normalises its lists, so the index only ever sees valid
// values.

// Limits on the model, so one record cannot blow up the index.
const (
	MaxIDLen     = ids.MaxLen
	maxName      = 200
	maxList      = 500
	maxCaps      = 8
	maxDayParts  = 32
	maxSlots     = 64
	maxDomains   = 64
	maxSizes     = 16
	maxVariants  = 32
	maxURL       = 2048
	maxHTML      = 64 << 10
	maxImageData = 256 << 10
	maxCPM       = 100000
	maxPriority  = 16
)

// ValidID reports whether s may be an id: 1-64 of A-Z a-z 0-9 _ -, the
// one id rule (ids.Valid). Ids become KV keys and URL path segments, so
// nothing else is allowed.
func ValidID(s string) bool { return ids.Valid(s) }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func checkID(field, s string) error {
	if !ValidID(s) {
		return invalid("%s %q must be 1-64 characters of A-Z a-z 0-9 _ -", field, s)
	}
	return nil
}

// checkEventID checks an id that events carry (a campaign's, a creative's,
// a site's, a slot's): the privacy choke point rewrites every event's text
// (P1, P2), so an id it would change, one holding a sensitive term or a run
// of digits that reads as a phone number, would reach the statistics, the
// caps and the budgets as another id, or as none. Such an id is refused.
func checkEventID(field, s string) error {
	if err := checkID(field, s); err != nil {
		return err
	}
	if cat, ok := sensitive(s); ok {
		return invalid("%s %q names the sensitive category %s; events would carry no id (P1)", field, s, cat)
	}
	if kind, ok := privacy.HasContact([]byte(s)); ok {
		return invalid("%s %q reads as contact data (%s: at most %d digits in a row); events would carry it cut (P2)", field, s, kind, privacy.MinPhoneDigits-1)
	}
	return nil
}

func checkName(field, s string, required bool) error {
	if required && strings.TrimSpace(s) == "" {
		return invalid("%s is required", field)
	}
	if len(s) > maxName {
		return invalid("%s is longer than %d bytes", field, maxName)
	}
	return nil
}

func checkStatus(s *Status) error {
	if *s == "" {
		*s = Active
	}
	if !s.valid() {
		return invalid("status %q must be active, paused or archived", *s)
	}
	return nil
}

// Validate checks a and fills defaults.
func (a *Advertiser) Validate() error {
	if err := checkID("id", a.ID); err != nil {
		return err
	}
	if err := checkName("name", a.Name, true); err != nil {
		return err
	}
	if len(a.Domain) > 253 {
		return invalid("domain is too long")
	}
	return checkStatus(&a.Status)
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

var devices = []string{"desktop", "mobile", "tablet", "tv"}

// Validate checks c, fills defaults and runs check (when not nil) on every
// segment and category it targets, so a sensitive one is refused (P1).
func (c *Campaign) Validate(check func(string) error) error {
	if err := checkEventID("id", c.ID); err != nil {
		return err
	}
	if err := checkID("advertiser", c.Advertiser); err != nil {
		return err
	}
	if err := checkName("name", c.Name, true); err != nil {
		return err
	}
	if err := checkStatus(&c.Status); err != nil {
		return err
	}
	if c.Start.IsZero() {
		return invalid("start is required (RFC 3339, e.g. 2025-01-01T00:00:00Z)")
	}
	if !c.End.IsZero() && !c.End.After(c.Start) {
		return invalid("end must be after start")
	}
	if c.Priority == 0 {
		c.Priority = DefaultPriority
	}
	if c.Priority < 1 || c.Priority > maxPriority {
		return invalid("priority %d must be 1 (highest) to %d", c.Priority, maxPriority)
	}
	if math.IsNaN(c.CPM) || c.CPM < 0 || c.CPM > maxCPM {
		return invalid("cpm must be between 0 and %d", maxCPM)
	}
	if c.Weight == 0 {
		c.Weight = 1
	}
	if c.Weight < 1 || c.Weight > 1000 {
		return invalid("weight %d must be 1 to 1000", c.Weight)
	}
	if err := c.Budget.validate(c.CPM); err != nil {
		return err
	}
	if len(c.Caps) > maxCaps {
		return invalid("at most %d frequency caps", maxCaps)
	}
	for i, f := range c.Caps {
		if f.Count < 1 || f.Count > 1000 {
			return invalid("frequency_caps[%d].count %d must be 1 to 1000", i, f.Count)
		}
		if w := time.Duration(f.Window); w < time.Minute || w > 30*24*time.Hour {
			return invalid("frequency_caps[%d].window must be 1m to 720h", i)
		}
	}
	if len(c.DayParts) > maxDayParts {
		return invalid("at most %d day_parts", maxDayParts)
	}
	for i, d := range c.DayParts {
		if d.From < 0 || d.From > 23 || d.To <= d.From || d.To > 24 {
			return invalid("day_parts[%d] needs 0 <= from < to <= 24", i)
		}
		for _, day := range d.Days {
			if _, ok := weekdays[day]; !ok {
				return invalid("day_parts[%d]: day %q must be one of mon tue wed thu fri sat sun", i, day)
			}
		}
	}
	if c.Timezone != "" {
		if _, err := time.LoadLocation(c.Timezone); err != nil || len(c.Timezone) > 64 {
			return invalid("timezone %q is not an IANA time zone name", c.Timezone)
		}
	}
	if len(c.TrackingNumbers) > 20 {
		return invalid("at most 20 tracking_numbers")
	}
	for i, n := range c.TrackingNumbers {
		if d := phone.Key(n); len(n) > 32 || len(d) < 5 || len(d) > 15 {
			return invalid("tracking_numbers[%d] %q is not a phone number (5 to 15 digits)", i, n)
		}
	}
	return c.Targeting.validate(check)
}

func (b *Budget) validate(cpm float64) error {
	if b.Total == 0 && b.Daily == 0 {
		b.Unit = ""
		return nil
	}
	switch b.Unit {
	case Impressions:
		if b.Total != math.Trunc(b.Total) || b.Daily != math.Trunc(b.Daily) {
			return invalid("budget in impressions must be whole numbers")
		}
	case Money:
		if cpm <= 0 {
			return invalid("a money budget needs a cpm above 0")
		}
	default:
		return invalid("budget.unit %q must be impressions or money", b.Unit)
	}
	for _, v := range []float64{b.Total, b.Daily} {
		if math.IsNaN(v) || v < 0 || v > 1e12 {
			return invalid("budget amounts must be between 0 and 1e12")
		}
	}
	if b.Total > 0 && b.Daily > b.Total {
		return invalid("budget.daily exceeds budget.total")
	}
	return nil
}

func (t *Targeting) validate(check func(string) error) error {
	lists := []struct {
		name string
		l    *List
		norm func(string) (string, bool)
	}{
		{"languages", &t.Languages, normLang},
		{"countries", &t.Countries, normCountry},
		{"devices", &t.Devices, normDevice},
		{"sites", &t.Sites, normID},
		{"slots", &t.Slots, normSlot},
		{"categories", &t.Categories, normToken},
	}
	for _, x := range lists {
		for _, part := range []struct {
			name string
			vals []string
		}{{"include", x.l.Include}, {"exclude", x.l.Exclude}} {
			if len(part.vals) > maxList {
				return invalid("targeting.%s.%s has more than %d values", x.name, part.name, maxList)
			}
			for i, v := range part.vals {
				n, ok := x.norm(v)
				if !ok {
					return invalid("targeting.%s.%s: %q is not a valid value", x.name, part.name, v)
				}
				part.vals[i] = n
			}
		}
		x.l.Include = dedupe(x.l.Include)
		x.l.Exclude = dedupe(x.l.Exclude)
	}
	seg := &t.Segments
	for _, part := range []struct {
		name string
		vals *[]string
	}{{"any", &seg.Any}, {"all", &seg.All}, {"none", &seg.None}} {
		if len(*part.vals) > maxList {
			return invalid("targeting.segments.%s has more than %d values", part.name, maxList)
		}
		for _, v := range *part.vals {
			if _, ok := normToken(v); !ok || v != strings.ToLower(v) {
				return invalid("targeting.segments.%s: %q is not a valid segment id", part.name, v)
			}
		}
		*part.vals = dedupe(*part.vals)
	}
	// P1: neither a segment nor a contextual category may be sensitive.
	for _, group := range [][]string{seg.Any, seg.All, seg.None, t.Categories.Include, t.Categories.Exclude} {
		for _, v := range group {
			if err := checkSensitive(v, check); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkSensitive refuses v when the built-in guard or check flags it.
func checkSensitive(v string, check func(string) error) error {
	if cat, ok := sensitive(v); ok {
		return fmt.Errorf("%w: %q falls in the sensitive category %s and may not be targeted (P1)", ErrSensitive, v, cat)
	}
	if check != nil {
		if err := check(v); err != nil {
			return fmt.Errorf("%w: %q: %w", ErrSensitive, v, err)
		}
	}
	return nil
}

func dedupe(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// tokenRE is a segment id or category: lowercase words with - _ . / :
var tokenRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_./:-]{0,63}$`)

func normToken(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	return s, tokenRE.MatchString(s)
}

func normID(s string) (string, bool) { return s, ValidID(s) }

func normSlot(s string) (string, bool) {
	site, slot, ok := strings.Cut(s, "/")
	return s, ok && ValidID(site) && ValidID(slot)
}

func normLang(s string) (string, bool) {
	s = strings.ToLower(s)
	if len(s) < 2 || len(s) > 3 {
		return s, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return s, false
		}
	}
	return s, true
}

func normCountry(s string) (string, bool) {
	s = strings.ToUpper(s)
	cc, region, hasRegion := strings.Cut(s, "-")
	if len(cc) != 2 || !isAlpha(cc) {
		return s, false
	}
	if hasRegion && (len(region) < 1 || len(region) > 3 || !isAlnum(region)) {
		return s, false
	}
	return s, true
}

func normDevice(s string) (string, bool) {
	s = strings.ToLower(s)
	return s, slices.Contains(devices, s)
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Validate checks cr and fills defaults.
func (cr *Creative) Validate() error {
	if err := checkEventID("id", cr.ID); err != nil {
		return err
	}
	if err := checkID("advertiser", cr.Advertiser); err != nil {
		return err
	}
	if err := checkEventID("campaign", cr.Campaign); err != nil {
		return err
	}
	if err := checkName("name", cr.Name, false); err != nil {
		return err
	}
	if err := checkStatus(&cr.Status); err != nil {
		return err
	}
	if cr.Weight == 0 {
		cr.Weight = 1
	}
	if cr.Weight < 1 || cr.Weight > 1000 {
		return invalid("weight %d must be 1 to 1000", cr.Weight)
	}
	if len(cr.Sizes) > maxSizes {
		return invalid("at most %d sizes", maxSizes)
	}
	for _, s := range cr.Sizes {
		if _, _, ok := parseSize(s); !ok {
			return invalid("size %q must be WIDTHxHEIGHT, e.g. 300x250", s)
		}
	}
	if err := checkLanding("landing", cr.Landing, true); err != nil {
		return err
	}
	switch cr.Type {
	case Image, HTML, Profile:
		if len(cr.Sizes) == 0 {
			return invalid("a %s creative needs at least one size", cr.Type)
		}
	case Native:
	default:
		return invalid("type %q must be image, html, native or profile", cr.Type)
	}
	if cr.Type == Profile {
		if err := checkID("profile_user", cr.ProfileUser); err != nil {
			return err
		}
	} else if cr.ProfileUser != "" {
		return invalid("profile_user is only for profile creatives")
	}
	if err := cr.Content.validate(cr.Type, ""); err != nil {
		return err
	}
	if len(cr.Variants) > maxVariants {
		return invalid("at most %d language variants", maxVariants)
	}
	for lang, v := range cr.Variants {
		if n, ok := normLang(lang); !ok || n != lang {
			return invalid("variant language %q must be a lowercase primary subtag such as de", lang)
		}
		if err := v.Content.validate(cr.Type, "variants."+lang+"."); err != nil {
			return err
		}
		if err := checkLanding("variants."+lang+".landing", v.Landing, false); err != nil {
			return err
		}
	}
	return nil
}

func (c *Content) validate(t CreativeType, field string) error {
	switch t {
	case Image:
		if err := checkImage(field+"image", c.Image, true); err != nil {
			return err
		}
	case HTML:
		if strings.TrimSpace(c.HTML) == "" {
			return invalid("%shtml is required for an html creative", field)
		}
	case Native:
		if c.Native == nil || strings.TrimSpace(c.Native.Title) == "" {
			return invalid("%snative.title is required for a native creative", field)
		}
	}
	if len(c.HTML) > maxHTML {
		return invalid("%shtml is longer than %d bytes", field, maxHTML)
	}
	if len(c.Alt) > maxName {
		return invalid("%salt is longer than %d bytes", field, maxName)
	}
	if c.Image != "" {
		if err := checkImage(field+"image", c.Image, false); err != nil {
			return err
		}
	}
	if n := c.Native; n != nil {
		for _, s := range []string{n.Title, n.Body, n.CTA, n.Sponsor} {
			if len(s) > 1000 {
				return invalid("%snative fields are limited to 1000 bytes", field)
			}
		}
		if err := checkImage(field+"native.image", n.Image, false); err != nil {
			return err
		}
		if err := checkImage(field+"native.icon", n.Icon, false); err != nil {
			return err
		}
	}
	return nil
}

func checkImage(field, s string, required bool) error {
	if s == "" {
		if required {
			return invalid("%s is required", field)
		}
		return nil
	}
	if strings.HasPrefix(s, "data:image/") {
		if len(s) > maxImageData {
			return invalid("%s: data URI is longer than %d bytes", field, maxImageData)
		}
		return nil
	}
	return checkLanding(field, s, true)
}

// checkLanding allows absolute http(s) URLs only: never javascript: or data:.
func checkLanding(field, s string, required bool) error {
	if s == "" {
		if required {
			return invalid("%s is required", field)
		}
		return nil
	}
	if len(s) > maxURL {
		return invalid("%s is longer than %d bytes", field, maxURL)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalid("%s %q must be an absolute http or https URL", field, s)
	}
	return nil
}

// Validate checks s and fills defaults.
func (s *Site) Validate() error {
	if err := checkEventID("id", s.ID); err != nil {
		return err
	}
	if err := checkID("publisher", s.Publisher); err != nil {
		return err
	}
	if err := checkName("name", s.Name, true); err != nil {
		return err
	}
	if err := checkStatus(&s.Status); err != nil {
		return err
	}
	if len(s.Domain) > 253 {
		return invalid("domain is too long")
	}
	// The older single domain counts when it is a host name; sites stored
	// before Domains keep loading either way.
	if d, ok := normHost(s.Domain); ok && !slices.Contains(s.Domains, d) {
		s.Domains = append(s.Domains, d)
	}
	if len(s.Domains) > maxDomains {
		return invalid("at most %d domains", maxDomains)
	}
	for i, d := range s.Domains {
		n, ok := normHost(d)
		if !ok {
			return invalid("domain %q is not a host name (a name such as news.example, without scheme, port or path)", d)
		}
		s.Domains[i] = n
	}
	s.Domains = dedupe(s.Domains)
	if len(s.Categories) > maxList {
		return invalid("at most %d categories", maxList)
	}
	for i, c := range s.Categories {
		n, ok := normToken(c)
		if !ok {
			return invalid("category %q is not valid", c)
		}
		if err := checkSensitive(n, nil); err != nil {
			return err
		}
		s.Categories[i] = n
	}
	s.Categories = dedupe(s.Categories)
	if len(s.Slots) == 0 || len(s.Slots) > maxSlots {
		return invalid("a site needs 1 to %d slots", maxSlots)
	}
	seen := map[string]bool{}
	for i, sl := range s.Slots {
		if err := checkEventID(fmt.Sprintf("slots[%d].id", i), sl.ID); err != nil {
			return err
		}
		if seen[sl.ID] {
			return invalid("slot id %q appears twice", sl.ID)
		}
		seen[sl.ID] = true
		if len(sl.Sizes) == 0 && !sl.Native {
			return invalid("slot %q needs sizes or native", sl.ID)
		}
		if len(sl.Sizes) > maxSizes {
			return invalid("slot %q has more than %d sizes", sl.ID, maxSizes)
		}
		for _, z := range sl.Sizes {
			if _, _, ok := parseSize(z); !ok {
				return invalid("slot %q: size %q must be WIDTHxHEIGHT", sl.ID, z)
			}
		}
	}
	return nil
}

// parseSize reads "300x250".
func parseSize(s string) (w, h int, ok bool) {
	a, b, found := strings.Cut(s, "x")
	if !found {
		return 0, 0, false
	}
	w, err1 := strconv.Atoi(a)
	h, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || w < 1 || h < 1 || w > 4000 || h > 4000 {
		return 0, 0, false
	}
	return w, h, strconv.Itoa(w)+"x"+strconv.Itoa(h) == s
}
