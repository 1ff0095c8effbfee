package device

import "bytes"

// Browser families, for publishers' statistics: the family only, never the
// version (a version adds to a fingerprint and tells a publisher nothing).
const (
	BrowserChrome  = "Chrome"
	BrowserEdge    = "Edge"
	BrowserFirefox = "Firefox"
	BrowserSafari  = "Safari"
	BrowserOpera   = "Opera"
	BrowserSamsung = "Samsung Internet"
	BrowserYandex  = "Yandex"
	BrowserOther   = "Other"
)

// browserRule maps a marker to a family; the first marker found wins, so
// the browsers built on Chrome or Safari come before them (their UAs name
// Chrome and Safari too).
type browserRule struct {
	marker, family string
}

var (
	// chBrands are Sec-CH-UA brand names; "Chromium" is every Chromium's.
	chBrands = [...]browserRule{
		{`"Microsoft Edge"`, BrowserEdge}, {`"Opera`, BrowserOpera}, {`"YaBrowser"`, BrowserYandex},
		{`"Yandex"`, BrowserYandex}, {`"Samsung Internet"`, BrowserSamsung}, {`"Google Chrome"`, BrowserChrome},
		{`"Chromium"`, BrowserChrome},
	}
	uaMarkers = [...]browserRule{
		{"SamsungBrowser/", BrowserSamsung}, {"YaBrowser/", BrowserYandex}, {"Edg/", BrowserEdge},
		{"EdgA/", BrowserEdge}, {"EdgiOS/", BrowserEdge}, {"Edge/", BrowserEdge}, {"OPR/", BrowserOpera},
		{"OPiOS/", BrowserOpera}, {"Opera", BrowserOpera}, {"FxiOS/", BrowserFirefox}, {"Firefox/", BrowserFirefox},
		{"CriOS/", BrowserChrome}, {"Chrome/", BrowserChrome}, {"Chromium/", BrowserChrome},
		{"Safari/", BrowserSafari},
	}
)

// browserFamily names the browser from Sec-CH-UA's brands first, then the
// User-Agent; "" when neither says. It allocates nothing.
func browserFamily(ua, chua []byte) string {
	for _, r := range chBrands {
		if bytes.Contains(chua, []byte(r.marker)) {
			return r.family
		}
	}
	if len(ua) == 0 {
		return ""
	}
	for _, r := range uaMarkers {
		if bytes.Contains(ua, []byte(r.marker)) {
			return r.family
		}
	}
	return BrowserOther
}
