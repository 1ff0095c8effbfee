package device

import (
	"testing"

	"github.com/adsyn/adsyn/internal/event"
)

func TestBrowserFamily(t *testing.T) {
	tests := []struct {
		name     string
		ua, chua string
		want     string
	}{
		{"chrome windows", uaChromeWindows, "", BrowserChrome},
		{"firefox", uaFirefoxWin7, "", BrowserFirefox},
		{"yandex", uaYandexWindows, "", BrowserYandex},
		{"safari iphone", uaSafariIPhone, "", BrowserSafari},
		{"safari mac", uaSafariMac, "", BrowserSafari},
		{"samsung", uaSamsungBrowser, "", BrowserSamsung},
		{"edge on xbox", uaXbox, "", BrowserEdge},
		{"firefox android", uaFirefoxAndroid, "", BrowserFirefox},
		{"chrome ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", "", BrowserChrome},
		{"opera", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/110.0.0.0", "", BrowserOpera},
		{"in-app facebook", uaFacebookIOS, "", BrowserOther},
		{"app", "SomeApp/1.0", "", BrowserOther},
		{"nothing", "", "", ""},
		{"edge by hints", uaChromeWindows, `"Chromium";v="124", "Microsoft Edge";v="124", "Not-A.Brand";v="99"`, BrowserEdge},
		{"chrome by hints", uaChromeWindows, `"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"`, BrowserChrome},
		{"opera by hints", uaChromeWindows, `"Opera";v="110", "Chromium";v="124", "Not-A.Brand";v="24"`, BrowserOpera},
	}
	for _, tt := range tests {
		var d event.Device
		Parse(Hints{UA: []byte(tt.ua), CHUA: []byte(tt.chua)}, &d)
		if d.Browser != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, d.Browser, tt.want)
		}
	}
}
