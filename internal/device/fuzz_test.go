package device

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/adsyn/adsyn/internal/event"
)

var (
	deviceTypes = []string{TypeDesktop, TypeMobile, TypeTablet, TypeTV, TypeBot, TypeUnknown}
	osNames     = []string{"", OSWindows, OSMacOS, OSIOS, OSIPadOS, OSAndroid, OSLinux, OSChromeOS,
		OSHarmonyOS, OSTizen, OSWebOS, OSTVOS, OSKaiOS, OSFuchsia}
)

func FuzzParse(f *testing.F) {
	for _, ua := range []string{
		uaChromeWindows, uaSafariIPhone, uaSafariIPad, uaSafariMac, uaChromeSamsung, uaSamsungBrowser,
		uaWebView, uaChromeReduced, uaUCBrowser, uaYandexAndroid, uaFirefoxLinux, uaChromeOS,
		uaHarmonyAndroid, uaKaiOS, uaTizenTV, uaWebOSTV, uaFireTV, uaGooglebotMobile, uaHeadless, "",
		"Mozilla/5.0 (Linux; Android", "(iPad; CPU OS 99_99_99 like", "Android 1;;;; Build/",
	} {
		f.Add([]byte(ua), []byte(nil), []byte(nil), []byte(nil), []byte(nil), []byte(nil))
	}
	f.Add([]byte(uaChromeReduced), []byte(`"Chromium";v="124", "Google Chrome";v="124"`), []byte("?1"),
		[]byte(`"Android"`), []byte(`"14.0.0"`), []byte(`"SM-S918B"`))
	f.Add([]byte(uaChromeWindows), []byte(`"HeadlessChrome";v="124"`), []byte("?0"),
		[]byte(`"Windows"`), []byte(`"15.0.0"`), []byte(`""`))
	f.Add([]byte(uaChromeWindows), []byte(nil), []byte("?0"), []byte(`"Windows"`), []byte(`"0.3.0"`), []byte(`"\"`))
	f.Fuzz(func(t *testing.T, ua, chua, mobile, platform, pver, model []byte) {
		var d event.Device
		Parse(Hints{UA: ua, CHUA: chua, CHMobile: mobile, CHPlatform: platform, CHPlatformVersion: pver, CHModel: model}, &d)
		if !slices.Contains(deviceTypes, d.Type) {
			t.Errorf("type %q", d.Type)
		}
		if !slices.Contains(osNames, d.OS) {
			t.Errorf("os %q", d.OS)
		}
		if len(d.OSVersion) > MaxVersion || !printable(d.OSVersion) {
			t.Errorf("version %q", d.OSVersion)
		}
		if len(d.Model) > MaxModel || !printable(d.Model) || strings.TrimSpace(d.Model) != d.Model {
			t.Errorf("model %q", d.Model)
		}
		if wantBot := IsBot(ua) || bytes.Contains(chua, headless); wantBot != (d.Type == TypeBot) {
			t.Errorf("IsBot %v, typed %q", wantBot, d.Type)
		}
		IsPrefetch(ua, chua, mobile)
	})
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func FuzzPrimaryLanguage(f *testing.F) {
	for _, s := range []string{
		"ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "en;q=0.1, de", "*", "", "fil-PH", "en;q=1.5", "en;q=0.8539",
		"zh-Hant-TW,zh;q=0.9,en;q=0.5,ja;q=0.4,ko;q=0.3,fr;q=0.2,de;q=0.1,es;q=0.05,it;q=0.01",
		",,;;q=,", "en;q", "iw",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, header []byte) {
		primary := PrimaryLanguage(header)
		langs := Languages(header, nil)
		if len(langs) > MaxLanguages {
			t.Errorf("%d languages", len(langs))
		}
		if len(langs) == 0 && primary != "" || len(langs) > 0 && langs[0] != primary {
			t.Errorf("primary %q, languages %q", primary, langs)
		}
		for i, l := range langs {
			if !known(l) || slices.Contains(langs[:i], l) {
				t.Errorf("languages %q", langs)
			}
		}
	})
}

func known(code string) bool {
	for _, list := range []string{iso639_1, iso639_3} {
		if slices.Contains(strings.Fields(list), code) {
			return true
		}
	}
	return false
}

func FuzzClientIP(f *testing.F) {
	for _, s := range []struct{ remote, xff string }{
		{"10.0.0.1", "198.51.100.1, 10.0.0.2"},
		{"10.0.0.1", "[2001:db8::7]:443, 198.51.100.1:80"},
		{"10.0.0.1", "unknown, ::ffff:1.2.3.4"},
		{"2001:db8:ffff::1", "1:2:3:4:5:6:1.2.3.4,fe80::1%eth0"},
		{"203.0.113.7", "1.2.3.4"},
		{"10.0.0.1", ",,, ,"},
		{"::1", "::"},
	} {
		f.Add(s.remote, []byte(s.xff), 24, 48)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	f.Fuzz(func(t *testing.T, remoteText string, xff []byte, v4, v6 int) {
		// The hand-written parser agrees with the standard library on every input.
		got, ok := parseAddr(xff)
		want, err := netip.ParseAddr(string(xff))
		if bytes.IndexByte(xff, '%') >= 0 {
			if ok {
				t.Errorf("zone accepted: %q", xff)
			}
		} else if ok != (err == nil) || ok && got != want {
			t.Errorf("parseAddr(%q) = %s, %v; netip: %s, %v", xff, got, ok, want, err)
		}

		remote, err := netip.ParseAddr(remoteText)
		if err != nil {
			return
		}
		ip := ClientIP(remote, xff, trusted)
		if !ip.IsValid() || ip.Is4In6() {
			t.Errorf("ClientIP(%s, %q) = %s", remote, xff, ip)
		}
		if !isTrusted(remote.Unmap(), trusted) && ip != remote.Unmap() {
			t.Errorf("untrusted remote %s replaced by %s", remote, ip)
		}
		out := TruncateIP(nil, ip, v4, v6)
		if _, err := netip.ParseAddr(string(out)); err != nil {
			t.Errorf("TruncateIP(%s, %d, %d) = %q: %v", ip, v4, v6, out, err)
		}
	})
}
