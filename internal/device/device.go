package device

import (
	"bytes"
	"unsafe"

	"github.com/adsyn/adsyn/internal/event"
)

// Device types: the values of event.Device.Type.
const (
	TypeDesktop = "desktop"
	TypeMobile  = "mobile"
	TypeTablet  = "tablet"
	TypeTV      = "tv" // smart TVs, streaming sticks and game consoles
	TypeBot     = "bot"
	TypeUnknown = "unknown"
)

// Operating systems: the values of event.Device.OS ("" when unknown).
const (
	OSWindows   = "Windows"
	OSMacOS     = "macOS"
	OSIOS       = "iOS"
	OSIPadOS    = "iPadOS"
	OSAndroid   = "Android"
	OSLinux     = "Linux"
	OSChromeOS  = "ChromeOS"
	OSHarmonyOS = "HarmonyOS"
	OSTizen     = "Tizen"
	OSWebOS     = "webOS"
	OSTVOS      = "tvOS"
	OSKaiOS     = "KaiOS"
	OSFuchsia   = "Fuchsia"
)

// Limits on the strings Parse takes from the headers.
const (
	MaxVersion = 16
	MaxModel   = 64
)

// Hints are the raw values of the request headers Parse reads. Any may be nil.
type Hints struct {
	UA                []byte // User-Agent
	CHUA              []byte // Sec-CH-UA
	CHMobile          []byte // Sec-CH-UA-Mobile
	CHPlatform        []byte // Sec-CH-UA-Platform
	CHPlatformVersion []byte // Sec-CH-UA-Platform-Version
	CHModel           []byte // Sec-CH-UA-Model
}

// Parse fills d from h: Client Hints first, the User-Agent for what they leave
// out. d.OSVersion and d.Model may point into h's bytes (see the package doc).
func Parse(h Hints, d *event.Device) {
	if d == nil {
		return
	}
	*d = event.Device{}
	u := parseUA(h.UA)

	if name := platformOS(sfString(h.CHPlatform)); name != "" {
		d.OS = name
		d.OSVersion = platformVersion(name, sfString(h.CHPlatformVersion))
	} else {
		d.OS = u.os
	}
	if d.OSVersion == "" && d.OS == u.os {
		d.OSVersion = u.version
	}
	if m := sfString(h.CHModel); m != nil {
		d.Model = clean(m, MaxModel)
	}
	if d.Model == "" && d.OS == u.os {
		d.Model = u.model
	}
	d.Browser = browserFamily(h.UA, h.CHUA)

	switch {
	case u.bot || bytes.Contains(h.CHUA, headless):
		d.Type = TypeBot
	case u.typ == TypeTV:
		d.Type = TypeTV // hints have no word for a TV
	default:
		switch mobile := sfBool(h.CHMobile); {
		case mobile == 1:
			d.Type = TypeMobile
		case mobile == 0 && d.OS == OSAndroid:
			d.Type = TypeTablet // Chrome sends ?0 on Android tablets
		case mobile == 0:
			d.Type = TypeDesktop
		default:
			d.Type = u.typ
		}
	}
}

var headless = []byte("HeadlessChrome")

// sfString returns the content of a structured-field string ("..." with
// optional surrounding spaces), or nil when b is not one or uses escapes
// (which would need a copy to undo; no real hint value has them).
func sfString(b []byte) []byte {
	b = trimSpace(b)
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil
	}
	b = b[1 : len(b)-1]
	if bytes.IndexByte(b, '\\') >= 0 || bytes.IndexByte(b, '"') >= 0 {
		return nil
	}
	return b
}

// sfBool returns 1 for ?1, 0 for ?0 and -1 for anything else.
func sfBool(b []byte) int {
	b = trimSpace(b)
	if len(b) != 2 || b[0] != '?' {
		return -1
	}
	switch b[1] {
	case '1':
		return 1
	case '0':
		return 0
	}
	return -1
}

// platformOS maps a Sec-CH-UA-Platform value to an OS name; "Unknown" and
// anything else give "".
func platformOS(p []byte) string {
	switch {
	case len(p) == 0:
		return ""
	case equalFold(p, "Windows"):
		return OSWindows
	case equalFold(p, "macOS"):
		return OSMacOS
	case equalFold(p, "iOS"):
		return OSIOS
	case equalFold(p, "iPadOS"):
		return OSIPadOS
	case equalFold(p, "Android"):
		return OSAndroid
	case equalFold(p, "Linux"):
		return OSLinux
	case equalFold(p, "Chrome OS"), equalFold(p, "Chromium OS"),
		equalFold(p, "ChromeOS"):
		return OSChromeOS
	case equalFold(p, "HarmonyOS"), equalFold(p, "OpenHarmony"):
		return OSHarmonyOS
	case equalFold(p, "Fuchsia"):
		return OSFuchsia
	}
	return ""
}

// platformVersion turns a Sec-CH-UA-Platform-Version value into OSVersion.
func platformVersion(name string, v []byte) string {
	switch name {
	case OSWindows:
		return windowsCH(v)
	case OSLinux:
		return "" // Chrome sends the kernel's version there, or nothing
	}
	return dotted(v)
}

// windowsCH maps Windows' platform version to its marketing version, per
// Microsoft's UA-CH guidance: major 13 and up is Windows 11, 1 to 12 is
// Windows 10, and 0.1, 0.2, 0.3 are Windows 7, 8, 8.1.
func windowsCH(v []byte) string {
	major, rest, ok := number(v)
	if !ok {
		return ""
	}
	switch {
	case major >= 13:
		return "11"
	case major >= 1:
		return "10"
	}
	if len(rest) < 2 || rest[0] != '.' {
		return ""
	}
	switch minor, _, _ := number(rest[1:]); minor {
	case 1:
		return "7"
	case 2:
		return "8"
	case 3:
		return "8.1"
	}
	return ""
}

// number reads up to 4 leading decimal digits.
func number(b []byte) (n int, rest []byte, ok bool) {
	i := 0
	for i < len(b) && i < 4 && isDigit(b[i]) {
		n = n*10 + int(b[i]-'0')
		i++
	}
	if i == 0 || (i < len(b) && isDigit(b[i])) {
		return 0, b, false
	}
	return n, b[i:], true
}

// dotted returns major[.minor] of a dot-separated version at the start of b,
// without a ".0" minor: "14.4.1" is "14.4", "14.0.0" is "14". It points into b.
func dotted(b []byte) string {
	i := 0
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	if i == 0 {
		return ""
	}
	end := i
	if i+1 < len(b) && b[i] == '.' && isDigit(b[i+1]) {
		j := i + 1
		zero := true
		for j < len(b) && isDigit(b[j]) {
			zero = zero && b[j] == '0'
			j++
		}
		if !zero {
			end = j
		}
	}
	if end > MaxVersion {
		return ""
	}
	return str(b[:end])
}

// clean returns b as a string pointing into it, trimmed of spaces and cut to
// max bytes, or "" when b holds anything but printable ASCII.
func clean(b []byte, max int) string {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return ""
		}
	}
	b = trimSpace(b)
	if len(b) > max {
		b = trimSpace(b[:max])
	}
	return str(b)
}

// str views b as a string without copying: the string lives as long as b's bytes.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
