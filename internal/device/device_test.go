package device

import (
	"strings"
	"testing"

	"github.com/adsyn/adsyn/internal/event"
)

// Real User-Agent strings, as browsers and bots send them.
const (
	uaChromeWindows  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	uaFirefoxWin7    = "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:109.0) Gecko/20100101 Firefox/115.0"
	uaYandexWindows  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36"
	uaSafariIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
	uaFacebookIOS    = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.38.108;FBBV/590188474;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]"
	uaPinterestIOS   = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]"
	uaSafariIPad     = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
	uaSafariIPad12   = "Mozilla/5.0 (iPad; CPU OS 12_5_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Mobile/15E148 Safari/604.1"
	uaSafariMac      = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15"
	uaFirefoxMac     = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0"
	uaChromeSamsung  = "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36"
	uaSamsungBrowser = "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36"
	uaWebView        = "Mozilla/5.0 (Linux; Android 12; SM-G991B Build/SP1A.210812.016; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36"
	uaChromeReduced  = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
	uaTabletReduced  = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	uaGalaxyTab      = "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36"
	uaKindleFire     = "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/124.2.7 like Chrome/124.0.6367.219 Safari/537.36"
	uaUCBrowser      = "Mozilla/5.0 (Linux; U; Android 8.1.0; en-US; Redmi 5A Build/OPM1.171019.026) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/57.0.2987.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36"
	uaYandexAndroid  = "Mozilla/5.0 (Linux; arm_64; Android 12; SM-G991B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.128 YaBrowser/24.4.1.94.00 SA/3 Mobile Safari/537.36"
	uaCubot          = "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
	uaFirefoxAndroid = "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0"
	uaFirefoxTablet  = "Mozilla/5.0 (Android 13; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0"
	uaFirefoxLinux   = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
	uaFirefoxUbuntu  = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0"
	uaChromeOS       = "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	uaHarmonyNext    = "Mozilla/5.0 (Phone; OpenHarmony 4.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36 ArkWeb/4.1.6.1 Mobile"
	uaHarmonyAndroid = "Mozilla/5.0 (Linux; Android 10; HarmonyOS; NOH-AN00; HMSCore 6.13.0.302) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.5.302 Mobile Safari/537.36"
	uaKaiOS          = "Mozilla/5.0 (Mobile; LYF/F300B/LYF-F300B-001-01-15-130718-i; Android; rv:48.0) Gecko/48.0 Firefox/48.0 KAIOS/2.5"
	uaTizenTV        = "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36"
	uaWebOSTV        = "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36 WebAppManager"
	uaHbbTV          = "HbbTV/1.5.1 (+DRM; Panasonic; VIERA 2019; 3.001; 4301-0003 0002-0000; )"
	uaFireTV         = "Mozilla/5.0 (Linux; Android 9; AFTKA Build/PS7633; wv) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.230 Mobile Safari/537.36"
	uaGoogleTV       = "Mozilla/5.0 (Linux; Android 12.0; Build/STTL.240206.002) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 CrKey/1.56.500000 DeviceType/AndroidTV"
	uaRoku           = "Roku/DVP-12.5 (12.5.0.4174-56)"
	uaXbox           = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0"
	uaPS5            = "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15"

	uaGooglebot       = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	uaGooglebotMobile = "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	uaBingbot         = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36"
	uaYandexBot       = "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)"
	uaYandexMetrika   = "Mozilla/5.0 (compatible; YandexMetrika/2.0; +http://yandex.com/bots yabs01)"
	uaAhrefs          = "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"
	uaSemrush         = "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)"
	uaFacebookHit     = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
	uaSlackbot        = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
	uaGPTBot          = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
	uaHeadless        = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36"
	uaCurl            = "curl/8.5.0"
	uaWget            = "Wget/1.21.4"
	uaPythonRequests  = "python-requests/2.31.0"
	uaGoHTTP          = "Go-http-client/1.1"
	uaUptimeRobot     = "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"
	uaPingdom         = "Mozilla/5.0 (compatible; Pingdom.com_bot_version_1.4_(http://www.pingdom.com/))"
	uaOkHTTP          = "okhttp/4.12.0"
)

func TestParseUserAgent(t *testing.T) {
	tests := []struct {
		name, ua            string
		typ, os, ver, model string
	}{
		{"chrome windows", uaChromeWindows, TypeDesktop, OSWindows, "10", ""},
		{"firefox windows 7", uaFirefoxWin7, TypeDesktop, OSWindows, "7", ""},
		{"yandex windows", uaYandexWindows, TypeDesktop, OSWindows, "10", ""},
		{"safari iphone", uaSafariIPhone, TypeMobile, OSIOS, "17.4", "iPhone"},
		{"facebook in-app ios", uaFacebookIOS, TypeMobile, OSIOS, "17.4", "iPhone"},
		{"pinterest in-app ios", uaPinterestIOS, TypeMobile, OSIOS, "16", "iPhone"},
		{"safari ipad", uaSafariIPad, TypeTablet, OSIPadOS, "16.6", "iPad"},
		{"safari ipad before ipados", uaSafariIPad12, TypeTablet, OSIOS, "12.5", "iPad"},
		{"safari mac", uaSafariMac, TypeDesktop, OSMacOS, "10.15", ""},
		{"firefox mac", uaFirefoxMac, TypeDesktop, OSMacOS, "14.4", ""},
		{"chrome samsung", uaChromeSamsung, TypeMobile, OSAndroid, "14", "SM-S918B"},
		{"samsung internet", uaSamsungBrowser, TypeMobile, OSAndroid, "13", "SM-A536B"},
		{"android webview", uaWebView, TypeMobile, OSAndroid, "12", "SM-G991B"},
		{"chrome reduced phone", uaChromeReduced, TypeMobile, OSAndroid, "", ""},
		{"chrome reduced tablet", uaTabletReduced, TypeTablet, OSAndroid, "", ""},
		{"galaxy tab", uaGalaxyTab, TypeTablet, OSAndroid, "13", "SM-X710"},
		{"kindle fire", uaKindleFire, TypeTablet, OSAndroid, "11", "KFTRWI"},
		{"uc browser with locale", uaUCBrowser, TypeMobile, OSAndroid, "8.1", "Redmi 5A"},
		{"yandex android", uaYandexAndroid, TypeMobile, OSAndroid, "12", "SM-G991B"},
		{"cubot phone", uaCubot, TypeMobile, OSAndroid, "10", "CUBOT_X30"},
		{"firefox android", uaFirefoxAndroid, TypeMobile, OSAndroid, "14", ""},
		{"firefox android tablet", uaFirefoxTablet, TypeTablet, OSAndroid, "13", ""},
		{"firefox linux", uaFirefoxLinux, TypeDesktop, OSLinux, "", ""},
		{"firefox ubuntu", uaFirefoxUbuntu, TypeDesktop, OSLinux, "", ""},
		{"chromebook", uaChromeOS, TypeDesktop, OSChromeOS, "14541", ""},
		{"harmonyos next", uaHarmonyNext, TypeMobile, OSHarmonyOS, "4.1", ""},
		{"harmonyos on android", uaHarmonyAndroid, TypeMobile, OSHarmonyOS, "", "NOH-AN00"},
		{"kaios", uaKaiOS, TypeMobile, OSKaiOS, "2.5", ""},
		{"samsung tizen tv", uaTizenTV, TypeTV, OSTizen, "6", ""},
		{"lg webos tv", uaWebOSTV, TypeTV, OSWebOS, "", ""},
		{"hbbtv", uaHbbTV, TypeTV, "", "", ""},
		{"fire tv", uaFireTV, TypeTV, OSAndroid, "9", "AFTKA"},
		{"chromecast google tv", uaGoogleTV, TypeTV, OSAndroid, "12", ""},
		{"roku", uaRoku, TypeTV, "", "", ""},
		{"xbox", uaXbox, TypeTV, OSWindows, "10", ""},
		{"playstation 5", uaPS5, TypeTV, "", "", ""},
		{"googlebot", uaGooglebot, TypeBot, "", "", ""},
		{"googlebot smartphone", uaGooglebotMobile, TypeBot, OSAndroid, "6", "Nexus 5X"},
		{"bingbot", uaBingbot, TypeBot, "", "", ""},
		{"yandexbot", uaYandexBot, TypeBot, "", "", ""},
		{"headless chrome", uaHeadless, TypeBot, OSLinux, "", ""},
		{"curl", uaCurl, TypeBot, "", "", ""},
		{"empty", "", TypeBot, "", "", ""},
		{"unknown", "SomeApp/1.0", TypeUnknown, "", "", ""},
		{"opera mini", "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54", TypeMobile, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d event.Device
			Parse(Hints{UA: []byte(tt.ua)}, &d)
			d.Browser = "" // TestBrowserFamily's
			want := event.Device{Type: tt.typ, OS: tt.os, OSVersion: tt.ver, Model: tt.model}
			if d != want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.ua, d, want)
			}
		})
	}
}

func TestParseClientHints(t *testing.T) {
	const chromeBrands = `"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"`
	tests := []struct {
		name                string
		h                   Hints
		typ, os, ver, model string
	}{
		{"windows 11", Hints{UA: []byte(uaChromeWindows), CHUA: []byte(chromeBrands), CHMobile: []byte("?0"),
			CHPlatform: []byte(`"Windows"`), CHPlatformVersion: []byte(`"15.0.0"`)}, TypeDesktop, OSWindows, "11", ""},
		{"windows 11 at 13", Hints{UA: []byte(uaChromeWindows), CHPlatform: []byte(`"Windows"`), CHPlatformVersion: []byte(`"13.0.0"`)},
			TypeDesktop, OSWindows, "11", ""},
		{"windows 10", Hints{UA: []byte(uaChromeWindows), CHPlatform: []byte(`"Windows"`), CHPlatformVersion: []byte(`"10.0.0"`)},
			TypeDesktop, OSWindows, "10", ""},
		{"windows 8.1", Hints{UA: []byte(uaChromeWindows), CHPlatform: []byte(`"Windows"`), CHPlatformVersion: []byte(`"0.3.0"`)},
			TypeDesktop, OSWindows, "8.1", ""},
		{"windows 7", Hints{UA: []byte(uaFirefoxWin7), CHPlatform: []byte(`"Windows"`), CHPlatformVersion: []byte(`"0.1.0"`)},
			TypeDesktop, OSWindows, "7", ""},
		{"windows low entropy only", Hints{UA: []byte(uaChromeWindows), CHMobile: []byte("?0"), CHPlatform: []byte(`"Windows"`)},
			TypeDesktop, OSWindows, "10", ""},
		{"windows bad version falls back to ua", Hints{UA: []byte(uaChromeWindows), CHPlatform: []byte(`"Windows"`), CHPlatformVersion: []byte(`"x"`)},
			TypeDesktop, OSWindows, "10", ""},
		{"macos", Hints{UA: []byte(uaSafariMac), CHPlatform: []byte(`"macOS"`), CHPlatformVersion: []byte(`"14.4.1"`)},
			TypeDesktop, OSMacOS, "14.4", ""},
		{"android phone", Hints{UA: []byte(uaChromeReduced), CHMobile: []byte("?1"), CHPlatform: []byte(`"Android"`),
			CHPlatformVersion: []byte(`"14.0.0"`), CHModel: []byte(`"SM-S918B"`)}, TypeMobile, OSAndroid, "14", "SM-S918B"},
		{"android tablet", Hints{UA: []byte(uaTabletReduced), CHMobile: []byte("?0"), CHPlatform: []byte(`"Android"`),
			CHPlatformVersion: []byte(`"13.0.0"`), CHModel: []byte(`"SM-X710"`)}, TypeTablet, OSAndroid, "13", "SM-X710"},
		{"android low entropy only", Hints{UA: []byte(uaChromeReduced), CHMobile: []byte("?1"), CHPlatform: []byte(`"Android"`)},
			TypeMobile, OSAndroid, "", ""},
		{"spaces around values", Hints{UA: []byte(uaChromeReduced), CHMobile: []byte(" ?1 "), CHPlatform: []byte(` "Android" `),
			CHModel: []byte(` "Pixel 8 Pro" `)}, TypeMobile, OSAndroid, "", "Pixel 8 Pro"},
		{"model from ua when hint empty", Hints{UA: []byte(uaChromeSamsung), CHMobile: []byte("?1"), CHPlatform: []byte(`"Android"`),
			CHModel: []byte(`""`)}, TypeMobile, OSAndroid, "14", "SM-S918B"},
		{"escaped model dropped", Hints{UA: []byte(uaChromeReduced), CHPlatform: []byte(`"Android"`), CHModel: []byte(`"a\"b"`)},
			TypeMobile, OSAndroid, "", ""},
		{"non-ascii model dropped", Hints{UA: []byte(uaChromeReduced), CHPlatform: []byte(`"Android"`), CHModel: []byte("\"Pixel\xc3\xa9\"")},
			TypeMobile, OSAndroid, "", ""},
		{"long model cut", Hints{UA: []byte(uaChromeReduced), CHPlatform: []byte(`"Android"`),
			CHModel: []byte(`"` + strings.Repeat("M", 80) + `"`)}, TypeMobile, OSAndroid, "", strings.Repeat("M", MaxModel)},
		{"long version dropped", Hints{UA: []byte(uaChromeReduced), CHPlatform: []byte(`"Android"`),
			CHPlatformVersion: []byte(`"12345678901234567"`)}, TypeMobile, OSAndroid, "", ""},
		{"unquoted platform ignored", Hints{UA: []byte(uaChromeSamsung), CHPlatform: []byte(`Windows`)},
			TypeMobile, OSAndroid, "14", "SM-S918B"},
		{"unknown platform", Hints{UA: []byte(uaFirefoxLinux), CHPlatform: []byte(`"Unknown"`)}, TypeDesktop, OSLinux, "", ""},
		{"linux has no version", Hints{UA: []byte(uaFirefoxLinux), CHMobile: []byte("?0"), CHPlatform: []byte(`"Linux"`),
			CHPlatformVersion: []byte(`"6.5.0"`)}, TypeDesktop, OSLinux, "", ""},
		{"chrome os", Hints{UA: []byte(uaChromeOS), CHMobile: []byte("?0"), CHPlatform: []byte(`"Chrome OS"`),
			CHPlatformVersion: []byte(`"15786.48.0"`)}, TypeDesktop, OSChromeOS, "15786.48", ""},
		{"ua version not mixed across os", Hints{UA: []byte(uaChromeSamsung), CHPlatform: []byte(`"Windows"`)},
			TypeMobile, OSWindows, "", ""},
		{"bad mobile hint ignored", Hints{UA: []byte(uaGalaxyTab), CHMobile: []byte("?2"), CHPlatform: []byte(`"Android"`)},
			TypeTablet, OSAndroid, "13", "SM-X710"},
		{"tv beats the mobile hint", Hints{UA: []byte(uaFireTV), CHMobile: []byte("?1"), CHPlatform: []byte(`"Android"`)},
			TypeTV, OSAndroid, "9", "AFTKA"},
		{"headless brand", Hints{UA: []byte(uaChromeWindows), CHUA: []byte(`"HeadlessChrome";v="124", "Chromium";v="124"`),
			CHMobile: []byte("?0"), CHPlatform: []byte(`"Windows"`)}, TypeBot, OSWindows, "10", ""},
		{"hints without ua", Hints{CHMobile: []byte("?1"), CHPlatform: []byte(`"Android"`)}, TypeBot, OSAndroid, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d event.Device
			Parse(tt.h, &d)
			d.Browser = "" // TestBrowserFamily's
			want := event.Device{Type: tt.typ, OS: tt.os, OSVersion: tt.ver, Model: tt.model}
			if d != want {
				t.Errorf("got  %+v\nwant %+v", d, want)
			}
		})
	}
}

func TestParseResetsAndToleratesNil(t *testing.T) {
	Parse(Hints{UA: []byte(uaChromeWindows)}, nil) // must not panic
	d := event.Device{Type: "x", OS: "y", OSVersion: "z", Model: "m", Browser: "b"}
	Parse(Hints{UA: []byte(uaFirefoxLinux)}, &d)
	if d != (event.Device{Type: TypeDesktop, OS: OSLinux, Browser: BrowserFirefox}) {
		t.Errorf("stale fields left: %+v", d)
	}
}

func TestIsBot(t *testing.T) {
	bots := []string{
		"", "   ", uaGooglebot, uaGooglebotMobile, uaBingbot, uaYandexBot, uaYandexMetrika, uaAhrefs,
		uaSemrush, uaFacebookHit, uaSlackbot, uaGPTBot, uaHeadless, uaCurl, uaWget, uaPythonRequests,
		uaGoHTTP, uaUptimeRobot, uaPingdom, uaOkHTTP,
		"Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
		"DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
		"Twitterbot/1.0", "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
		"WhatsApp/2.23.20.0 A", "TelegramBot (like TwitterBot)",
		"Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
		"Python-urllib/3.11", "Java/17.0.2", "Apache-HttpClient/4.5.14 (Java/17.0.2)", "axios/1.6.8",
		"node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "PostmanRuntime/7.37.3",
		"libwww-perl/6.72", "Scrapy/2.11.1 (+https://scrapy.org)",
		"Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/534.34 (KHTML, like Gecko) PhantomJS/1.9.8 Safari/534.34",
		"GOOGLEBOT", "Mozilla/5.0 (compatible; SomeNewCrawler/1.0)", "kube-probe/1.29",
	}
	for _, ua := range bots {
		if !IsBot([]byte(ua)) {
			t.Errorf("IsBot(%q) = false, want true", ua)
		}
	}
	people := []string{
		uaChromeWindows, uaYandexWindows, uaSafariIPhone, uaFacebookIOS, uaPinterestIOS, uaSafariIPad,
		uaSafariMac, uaChromeSamsung, uaSamsungBrowser, uaWebView, uaUCBrowser, uaYandexAndroid, uaCubot,
		uaFirefoxAndroid, uaFirefoxLinux, uaChromeOS, uaHarmonyNext, uaTizenTV, uaWebOSTV, uaFireTV,
		uaXbox, uaPS5, uaKindleFire,
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
	}
	for _, ua := range people {
		if IsBot([]byte(ua)) {
			t.Errorf("IsBot(%q) = true, want false", ua)
		}
	}
}

func TestIsPrefetch(t *testing.T) {
	tests := []struct {
		purpose, secPurpose, xMoz string
		want                      bool
	}{
		{"", "", "", false},
		{"prefetch", "", "", true},
		{"", "prefetch", "", true},
		{"", "prefetch;prerender", "", true},
		{"", "prefetch; anonymous-client-ip", "", true},
		{"", "", "prefetch", true},
		{"Prefetch", "", "", true},
		{" prefetch ", "", "", true},
		{"", "prerender", "", false},
		{"preview", "", "", false},
		{"", "prefetcher", "", false},
		{"", "", "prefetch-not", false},
	}
	for _, tt := range tests {
		got := IsPrefetch([]byte(tt.purpose), []byte(tt.secPurpose), []byte(tt.xMoz))
		if got != tt.want {
			t.Errorf("IsPrefetch(%q, %q, %q) = %v, want %v", tt.purpose, tt.secPurpose, tt.xMoz, got, tt.want)
		}
	}
}
