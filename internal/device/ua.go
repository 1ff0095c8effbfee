package device

import (
	"bytes"
	"strconv"
	"strings"
)

// uaInfo is what the User-Agent alone says. version and model point into it.
type uaInfo struct {
	typ, os, version, model string
	bot                     bool // as IsBot says
}

// Tokens parseUA looks for in one pass over the User-Agent (any case).
const (
	tWindowsPhone = iota
	tWindowsNT
	tWindows
	tIPhone
	tIPod
	tIPad
	tKaiOS
	tHarmonyOS
	tOpenHarmony
	tAndroid
	tCrOS
	tTizen
	tWeb0S
	tWebOS
	tAppleTV
	tAppleTVSpaced
	tTVOS
	tMacOSX
	tMacintosh
	tFuchsia
	tLinux
	tX11
	tTablet
	tMobi
	tOperaMini
	tMIDP
	tPhone
	tPC
	// TV markers: smart TVs, streaming devices and game consoles.
	tSmartTV
	tSmartTVDash
	tSmartTVSpaced
	tHbbTV
	tNetCast
	tGoogleTV
	tGoogleTVSpaced
	tAndroidTV
	tAndroidTVSpaced
	tCrKey
	tChromecast
	tBravia
	tRoku
	tVidaa
	tPlayStation
	tXbox
	numTokens
)

var uaTokens = func() *matcher {
	text := [numTokens]string{
		tWindowsPhone: "windows phone", tWindowsNT: "windows nt ", tWindows: "windows",
		tIPhone: "iphone", tIPod: "ipod", tIPad: "ipad", tKaiOS: "kaios",
		tHarmonyOS: "harmonyos", tOpenHarmony: "openharmony", tAndroid: "android",
		tCrOS: "cros ", tTizen: "tizen", tWeb0S: "web0s", tWebOS: "webos",
		tAppleTV: "appletv", tAppleTVSpaced: "apple tv", tTVOS: "tvos",
		tMacOSX: "mac os x", tMacintosh: "macintosh", tFuchsia: "fuchsia",
		tLinux: "linux", tX11: "x11", tTablet: "tablet", tMobi: "mobi",
		tOperaMini: "opera mini", tMIDP: "midp", tPhone: "phone", tPC: "(pc;",
		tSmartTV: "smarttv", tSmartTVDash: "smart-tv", tSmartTVSpaced: "smart tv",
		tHbbTV: "hbbtv", tNetCast: "netcast", tGoogleTV: "googletv", tGoogleTVSpaced: "google tv",
		tAndroidTV: "androidtv", tAndroidTVSpaced: "android tv", tCrKey: "crkey",
		tChromecast: "chromecast", tBravia: "bravia", tRoku: "roku", tVidaa: "vidaa",
		tPlayStation: "playstation", tXbox: "xbox",
	}
	// The bot patterns follow, so one pass over the UA finds everything.
	return newMatcher(append(text[:], botPatterns[:]...)...)
}()

var _ [64 - numTokens]struct{} // the tokens fit the first word of a bitset

// tvMask holds the tokens that make a device a TV.
const tvMask = (1<<numTokens-1)&^(1<<tSmartTV-1) |
	1<<tWeb0S | 1<<tWebOS | 1<<tAppleTV | 1<<tAppleTVSpaced | 1<<tTVOS

// parseUA reads the operating system, its version, the device type and (on
// Android) the model from a User-Agent. Platforms are tested most specific
// first: Windows Phone and KaiOS UAs also name Android, Android UAs name Linux.
func parseUA(ua []byte) (u uaInfo) {
	u.typ = TypeUnknown
	if len(trimSpace(ua)) == 0 {
		u.bot = true
		return u
	}
	found := uaTokens.mask(ua)
	u.bot = found[0]>>numTokens != 0 || found[1]|found[2]|found[3] != 0
	tok := found[0] & (1<<numTokens - 1)
	has := func(t int) bool { return tok&(1<<t) != 0 }
	switch {
	case has(tWindowsPhone):
		u.os, u.typ = OSWindows, TypeMobile

	case has(tWindowsNT):
		u.os, u.typ = OSWindows, TypeDesktop
		u.version = windowsNT(after(ua, "Windows NT "))

	case has(tIPhone), has(tIPod):
		u.os, u.typ, u.model = OSIOS, TypeMobile, "iPhone"
		if !has(tIPhone) {
			u.model = "iPod touch"
		}
		u.version = appleVersion(ua, " OS ")

	case has(tIPad):
		u.os, u.typ, u.model = OSIPadOS, TypeTablet, "iPad"
		u.version = appleVersion(ua, " OS ")
		if m := majorOf(u.version); m >= 0 && m < 13 {
			u.os = OSIOS // iPadOS is iOS's name on the iPad from 13 on
		}

	case has(tKaiOS):
		u.os, u.typ = OSKaiOS, TypeMobile
		u.version = osVersion(after(ua, "KAIOS/"))

	case has(tHarmonyOS), has(tOpenHarmony):
		u.os = OSHarmonyOS
		u.version = osVersion(after(ua, "OpenHarmony "))
		switch {
		case has(tPC):
			u.typ = TypeDesktop
		case has(tTablet):
			u.typ = TypeTablet
		case has(tMobi), has(tPhone):
			u.typ = TypeMobile
		case has(tAndroid):
			u.typ = TypeTablet
		}
		if i := find(ua, "Android"); i >= 0 {
			u.model = androidModel(ua[i:])
		}

	case has(tAndroid):
		i := max(find(ua, "Android"), 0) // found: the matcher saw it
		u.os = OSAndroid
		switch {
		case has(tTablet):
			u.typ = TypeTablet // Firefox says so
		case has(tMobi):
			u.typ = TypeMobile
		default:
			u.typ = TypeTablet // Android phones say Mobile, tablets do not
		}
		if rest := ua[i+len("Android"):]; len(rest) > 1 && rest[0] == ' ' {
			u.version = osVersion(rest[1:])
		}
		u.model = androidModel(ua[i:])
		switch {
		case u.model == "K":
			// Chrome's reduced UA ("Android 10; K") hides both model and version.
			u.model = ""
			if u.version == "10" {
				u.version = ""
			}
		case strings.HasPrefix(u.model, "AFT"): // Amazon Fire TV
			u.typ = TypeTV
		case strings.HasPrefix(u.model, "KF"): // Amazon Kindle Fire
			u.typ = TypeTablet
		}

	case has(tCrOS):
		u.os, u.typ = OSChromeOS, TypeDesktop
		// "CrOS x86_64 14541.0.0": the platform version follows the CPU.
		rest := after(ua, "CrOS ")
		if sp := bytes.IndexByte(rest, ' '); sp >= 0 {
			u.version = osVersion(rest[sp+1:])
		}

	case has(tTizen):
		u.os = OSTizen
		u.version = osVersion(after(ua, "Tizen "))
		if has(tMobi) {
			u.typ = TypeMobile
		}

	case has(tWeb0S), has(tWebOS):
		u.os = OSWebOS

	case has(tAppleTV), has(tAppleTVSpaced), has(tTVOS):
		u.os = OSTVOS

	case has(tMacOSX), has(tMacintosh):
		u.os, u.typ = OSMacOS, TypeDesktop
		u.version = osVersion(after(ua, "Mac OS X "))

	case has(tFuchsia):
		u.os = OSFuchsia

	case has(tLinux):
		u.os, u.typ = OSLinux, TypeDesktop

	case has(tX11):
		u.typ = TypeDesktop // a BSD or another Unix

	case has(tWindows):
		u.os, u.typ = OSWindows, TypeDesktop
	}

	switch {
	case tok&tvMask != 0:
		u.typ = TypeTV
	case u.typ != TypeUnknown:
	case has(tTablet):
		u.typ = TypeTablet
	case has(tMobi), has(tOperaMini), has(tMIDP):
		u.typ = TypeMobile
	}
	return u
}

// windowsNT maps the NT version after "Windows NT " to Windows' own name.
// Windows 11 also says 10.0: only the Client Hints tell them apart.
func windowsNT(b []byte) string {
	end := 0
	for end < len(b) && (isDigit(b[end]) || b[end] == '.') {
		end++
	}
	switch string(b[:end]) { // no allocation: the conversion is only compared
	case "10.0":
		return "10"
	case "6.3":
		return "8.1"
	case "6.2":
		return "8"
	case "6.1":
		return "7"
	case "6.0":
		return "Vista"
	case "5.1", "5.2":
		return "XP"
	}
	return ""
}

// appleVersion finds the first sep followed by a digit ("CPU iPhone OS 17_4")
// and reads the version there.
func appleVersion(ua []byte, sep string) string {
	for {
		i := strings.Index(str(ua), sep) // in sep's case only: the loop stays linear
		if i < 0 {
			return ""
		}
		ua = ua[i+len(sep):]
		if len(ua) > 0 && isDigit(ua[0]) {
			return osVersion(ua)
		}
	}
}

// osVersion reads major[.minor] at the start of b, with '.' or '_' between
// them (Apple writes 17_4). Dotted versions point into b; underscored ones
// come from a table, as "17.4" is not in the header.
func osVersion(b []byte) string {
	i := 0
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	if i+1 < len(b) && b[i] == '_' && isDigit(b[i+1]) {
		major, _, ok := number(b)
		minor, _, ok2 := number(b[i+1:])
		if ok && ok2 && minor != 0 && major < len(appleVersions) && minor < len(appleVersions[0]) {
			return appleVersions[major][minor]
		}
	}
	return dotted(b) // stops at '_': the major alone
}

// appleVersions holds "M.m" for the versions Apple UAs carry with an underscore.
var appleVersions = func() (t [40][20]string) {
	for major := range t {
		for minor := range t[major] {
			t[major][minor] = strconv.Itoa(major) + "." + strconv.Itoa(minor)
		}
	}
	return t
}()

// androidModel returns the device model in the UA comment that starts at
// "Android": the first token after the version that is not filler, cut at
// " Build/". "Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K" gives
// LG-L160L, "Linux; Android 14; SAMSUNG SM-S918B" gives SM-S918B.
func androidModel(b []byte) string {
	if end := bytes.IndexByte(b, ')'); end >= 0 {
		b = b[:end]
	}
	semi := bytes.IndexByte(b, ';')
	if semi < 0 {
		return ""
	}
	rest := b[semi+1:]
	for len(rest) > 0 {
		tok := rest
		rest = nil
		if i := bytes.IndexByte(tok, ';'); i >= 0 {
			tok, rest = tok[:i], tok[i+1:]
		}
		tok = trimSpace(tok)
		if i := find(tok, "Build/"); i >= 0 {
			return clean(tok[:i], MaxModel)
		}
		if modelFiller(tok) {
			continue
		}
		if len(tok) > len("SAMSUNG ") && string(tok[:len("SAMSUNG ")]) == "SAMSUNG " {
			tok = tok[len("SAMSUNG "):]
		}
		return clean(tok, MaxModel)
	}
	return ""
}

// modelFiller reports whether an Android UA comment token is something other
// than the model: a flag, a CPU, a locale, another product.
func modelFiller(tok []byte) bool {
	switch string(tok) {
	case "", "U", "I", "N", "Mobile", "Tablet", "wv", "Linux", "HarmonyOS",
		"arm", "arm_64", "arm64", "aarch64", "x86", "x86_64":
		return true
	}
	if bytes.IndexByte(tok, '/') >= 0 || bytes.HasPrefix(tok, []byte("rv:")) ||
		bytes.HasPrefix(tok, []byte("HMSCore")) {
		return true
	}
	return isLocale(tok)
}

// isLocale reports whether tok looks like "en", "en-us" or "ko_KR".
func isLocale(tok []byte) bool {
	switch len(tok) {
	case 2:
		return isLowerAlpha(tok[0]) && isLowerAlpha(tok[1])
	case 5:
		return isLowerAlpha(tok[0]) && isLowerAlpha(tok[1]) && (tok[2] == '-' || tok[2] == '_') &&
			isAlpha(tok[3]) && isAlpha(tok[4])
	}
	return false
}

func isLowerAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isAlpha(c byte) bool      { return isLowerAlpha(toLower(c)) }

// find returns the offset of s in b, in s's case or else in any case.
func find(b []byte, s string) int {
	if i := strings.Index(str(b), s); i >= 0 {
		return i
	}
	for i := 0; i+len(s) <= len(b); i++ {
		if hasPrefixFold(b[i:], s) {
			return i
		}
	}
	return -1
}

// after returns what follows the first s in b (any case), or nil.
func after(b []byte, s string) []byte {
	if i := find(b, s); i >= 0 {
		return b[i+len(s):]
	}
	return nil
}

// majorOf returns the leading number of a version, or -1.
func majorOf(v string) int {
	n, i := 0, 0
	for ; i < len(v) && i < 4 && isDigit(v[i]); i++ {
		n = n*10 + int(v[i]-'0')
	}
	if i == 0 {
		return -1
	}
	return n
}
