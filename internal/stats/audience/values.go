package audience

import (
	"net/url"
	"strings"

	"github.com/adsyn/adsyn/internal/event"
)

// Dimension is one breakdown of a site's traffic.
type Dimension uint8

// The dimensions, in the order of Dimensions.
const (
	Page Dimension = iota
	Referrer
	UTMSource
	UTMCampaign
	Language
	Device
	Browser
	OS
	Country
	EventName
	NumDimensions
)

var names = [NumDimensions]string{"page", "referrer", "utm_source", "utm_campaign", "language", "device", "browser", "os", "country", "event"}

// String is the dimension's name in the API (breakdown=...).
func (d Dimension) String() string {
	if d < NumDimensions {
		return names[d]
	}
	return "dimension?"
}

// ParseDimension returns the dimension named s.
func ParseDimension(s string) (Dimension, bool) {
	for i, n := range names {
		if n == s {
			return Dimension(i), true
		}
	}
	return 0, false
}

// MaxValue bounds a value's length in bytes; longer ones are cut on a rune
// boundary.
const MaxValue = 128

// Values fills v with e's value in each dimension ("" when it has none).
// The strings point into e's; it allocates only to decode an escaped utm
// value or lower-case a host.
func Values(e *event.Event, v *[NumDimensions]string) {
	*v = [NumDimensions]string{}
	host, path, query := splitURL(e.URL)
	if e.URL != "" {
		v[Page] = cut(path)
		if v[Page] == "" {
			v[Page] = "/"
		}
	}
	if rh, _, _ := splitURL(e.Referrer); rh != "" && !sameSite(rh, host) {
		v[Referrer] = cut(strings.TrimPrefix(rh, "www."))
	}
	v[UTMSource] = cut(param(query, "utm_source"))
	v[UTMCampaign] = cut(param(query, "utm_campaign"))
	v[Language] = cut(e.Lang)
	v[Device] = cut(e.Device.Type)
	v[Browser] = cut(e.Device.Browser)
	v[OS] = cut(e.Device.OS)
	v[Country] = cut(e.Country)
	if e.Kind == event.KindCustom {
		v[EventName] = cut(e.Name)
	}
}

// splitURL returns the lower-case host, the path and the query of an
// absolute URL; a URL that is not one gives "".
func splitURL(u string) (host, path, query string) {
	i := strings.Index(u, "://")
	if i <= 0 {
		return "", "", ""
	}
	rest := u[i+3:]
	if j := strings.IndexByte(rest, '#'); j >= 0 {
		rest = rest[:j]
	}
	if j := strings.IndexByte(rest, '?'); j >= 0 {
		rest, query = rest[:j], rest[j+1:]
	}
	host = rest
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		host, path = rest[:j], rest[j:]
	}
	if j := strings.LastIndexByte(host, '@'); j >= 0 {
		host = host[j+1:]
	}
	if j := strings.LastIndexByte(host, ':'); j >= 0 && !strings.Contains(host[j:], "]") {
		host = host[:j]
	}
	return lower(host), path, query
}

// sameSite reports whether two hosts are one site, "www." aside: a
// referrer from the site's own pages is navigation, not a source.
func sameSite(a, b string) bool {
	return strings.TrimPrefix(a, "www.") == strings.TrimPrefix(b, "www.")
}

// param returns the first value of key in a query, decoded (as sent when
// it does not decode).
func param(query, key string) string {
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			if d, err := url.QueryUnescape(val); err == nil {
				return d
			}
			return val
		}
	}
	return ""
}

// lower returns s in lower case, without allocating when it already is.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// cut bounds s to MaxValue bytes on a rune boundary.
func cut(s string) string {
	if len(s) <= MaxValue {
		return s
	}
	s = s[:MaxValue]
	for len(s) > 0 && s[len(s)-1]&0xc0 == 0x80 {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xc0 {
		s = s[:len(s)-1] // a lead byte whose continuation was cut
	}
	return s
}
