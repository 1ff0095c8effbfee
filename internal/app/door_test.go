package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/api/apitest"
	"github.com/adsyn/adsyn/internal/app"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/event"
)

// doors is a running `adsyn serve --demo` with a campaign owning a tracking
// number, reached over loopback like any client, 127.0.0.1 a trusted proxy.
type doors struct {
	a    *app.App
	keys map[string]string // by role
	edge string
}

const (
	doorVisitor = "AbCdEfGhIjKlMnOpQrStUv"
	doorNumber  = "+7 495 000-11-22"
	doorUA      = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
)

func doorConfig(t *testing.T, dir string) config.Config {
	cfg := testConfig(t)
	cfg.DataDir = dir
	cfg.Demo = true
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	return cfg
}

func openDoors(t *testing.T, cfg config.Config) *doors {
	t.Helper()
	a, out := start(t, cfg)
	d := &doors{a: a, keys: map[string]string{}, edge: "http://" + a.EdgeAddr()}
	for line := range strings.Lines(out.String()) {
		if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(f[1], "adsyn_") {
			d.keys[f[0]] = f[1]
		}
	}
	camp := `{"id":"door-calls","advertiser":"demo-house","name":"Calls","start":"2024-01-01T00:00:00Z","priority":16,"cpm":0,"tracking_numbers":["` + doorNumber + `"]}`
	if code, body := d.api(t, "PUT", "/v1/campaigns/door-calls", d.keys["admin"], camp); code/100 != 2 {
		t.Fatalf("campaign with a tracking number: %d %s", code, body)
	}
	// The catalog follows the campaign bucket: wait until the number is
	// known (the first call that is taken is stored, as any other).
	first := `{"tracking_number":"` + doorNumber + `","start":"` + time.Now().UTC().Format(time.RFC3339) + `","duration_s":1,"call_type":"first"}`
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := d.api(t, "POST", "/v1/events/call", d.keys["telephony"], first)
		if code == 202 {
			break
		}
		if code != 404 || time.Now().After(deadline) {
			t.Fatalf("call API: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

func (d *doors) api(t *testing.T, method, path, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+d.a.APIAddr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := apitest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// edgeDo sends one edge request from a visitor behind the trusted proxy.
func (d *doors) edgeDo(t *testing.T, method, path, body, xff string) (int, string) {
	t.Helper()
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.SetRequestURI(d.edge + path)
	req.Header.SetMethod(method)
	if body != "" {
		req.SetBodyString(body)
		req.Header.SetContentType("text/plain;charset=UTF-8")
	}
	req.Header.Set("User-Agent", doorUA)
	req.Header.Set("Cookie", "uid="+doorVisitor)
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	if err := fasthttp.DoTimeout(req, res, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode(), string(res.Body())
}

// raw returns the stored messages of ADSYN_EVENTS after seq, as bytes.
func raw(t *testing.T, js jetstream.JetStream, after uint64) (msgs [][]byte, last uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := after + 1; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m.Data)
	}
	return msgs, info.State.LastSeq
}

// next waits for the events stored after seq, until there are n.
func (d *doors) next(t *testing.T, after *uint64, n int) ([]event.Event, [][]byte) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var evs []event.Event
	var all [][]byte
	for {
		msgs, last := raw(t, d.a.Conn().JS, *after)
		for _, m := range msgs {
			all = append(all, m)
			if _, err := event.DecodeBatch(m, func(e *event.Event) error {
				c := *e
				c.Categories = append([]string(nil), e.Categories...)
				evs = append(evs, c)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		*after = last
		if len(evs) >= n {
			return evs, all
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events stored, want %d", len(evs), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// served is what /ad answers with an ad.
type served struct {
	Click string `json:"click"`
	Imp   string `json:"imp"`
}

// TestDoors sends dirty input through each door of a real process and reads
// the raw stream: what is stored is what the choke point left.
func TestDoors(t *testing.T) {
	d := openDoors(t, doorConfig(t, t.TempDir()))
	js := d.a.Conn().JS
	_, seq := raw(t, js, 0)

	dirtyQuery := "u=" + url.QueryEscape("https://example.org/hiv-test-results/positive?email=john@example.com&phone=+74951234567&utm_source=news#frag") +
		"&r=" + url.QueryEscape("https://mosque.example/") + "&q=" + url.QueryEscape("abortion clinic near me") +
		"&c=hiv,plumbing&site=hiv-site&n=" + url.QueryEscape("john@example.com")
	type want struct {
		kind                                event.Kind
		url, ref, query, site, name, ip, ar string
		cats                                []string
	}
	pixel := []struct {
		name, method, path, body, xff string
		want                          want
	}{
		{"gif dirty", "GET", "/p.gif?e=search&" + dirtyQuery, "", "198.51.100.77",
			want{kind: event.KindSearch, url: "https://example.org", ip: "198.51.100.0", cats: []string{"plumbing"}}},
		{"gif clean", "GET", "/p.gif?site=shop&u=" + url.QueryEscape("https://shop.example/taps?utm_source=news&id=7"), "", "2001:db8:85a3:1::77",
			want{kind: event.KindPageview, url: "https://shop.example/taps?utm_source=news", site: "shop", ip: "2001:db8:85a3::"}},
		{"beacon dirty", "POST", "/p", "e=search&" + dirtyQuery, "198.51.100.78",
			want{kind: event.KindSearch, url: "https://example.org", ip: "198.51.100.0", cats: []string{"plumbing"}}},
		{"conversion", "GET", "/p.gif?e=conversion&v=12.5&site=shop&n=" + url.QueryEscape("order for +7 916 123-45-67"), "", "",
			want{kind: event.KindConversion, site: "shop", name: "order for", ip: "127.0.0.0"}},
		{"custom", "POST", "/p", "e=custom&site=shop&n=" + url.QueryEscape("signup jane (at) mail (dot) example") + "&u=" + url.QueryEscape("https://shop.example/u/jane%40mail.example/edit"), "",
			want{kind: event.KindCustom, site: "shop", name: "signup", url: "https://shop.example/u//edit", ip: "127.0.0.0"}},
	}
	check := func(t *testing.T, e event.Event, w want) {
		t.Helper()
		if e.Kind != w.kind || e.URL != w.url || e.Referrer != w.ref || e.Query != w.query || e.Site != w.site || e.Name != w.name || e.IP != w.ip || e.Area != w.ar ||
			strings.Join(e.Categories, ",") != strings.Join(w.cats, ",") {
			t.Errorf("stored %+v\nwant %+v", e, w)
		}
	}
	for _, c := range pixel {
		t.Run(c.name, func(t *testing.T) {
			code, body := d.edgeDo(t, c.method, c.path, c.body, c.xff)
			if c.method == "GET" && (code != 200 || len(body) != 43) || c.method == "POST" && code != 204 {
				t.Fatalf("answer %d %q", code, body)
			}
			evs, _ := d.next(t, &seq, 1)
			if len(evs) != 1 {
				t.Fatalf("%d events", len(evs))
			}
			check(t, evs[0], c.want)
		})
	}

	var ad served
	t.Run("ad", func(t *testing.T) {
		path := "/ad?site=demo&slot=top&c=hiv,home&url=" + url.QueryEscape("https://example.org/hiv-test-results/positive")
		code, body := d.edgeDo(t, "GET", path, "", "198.51.100.79")
		if code != 200 || json.Unmarshal([]byte(body), &ad) != nil || ad.Click == "" || ad.Imp == "" {
			t.Fatalf("/ad: %d %s", code, body)
		}
		evs, _ := d.next(t, &seq, 1)
		if len(evs) != 1 {
			t.Fatalf("%d events", len(evs))
		}
		e := evs[0]
		if e.Kind != event.KindImpression || e.URL != "https://example.org" || strings.Join(e.Categories, ",") != "home" || e.Site != "demo" {
			t.Errorf("impression stored %+v", e)
		}
		code, body = d.edgeDo(t, "GET", "/ad?site=demo&slot=top&url="+url.QueryEscape("https://shop.example/u/john%40example.com"), "", "")
		if code != 200 {
			t.Fatalf("/ad: %d %s", code, body)
		}
		if evs, _ := d.next(t, &seq, 1); evs[0].URL != "https://shop.example/u/" {
			t.Errorf("impression URL %q", evs[0].URL)
		}
	})
	for _, c := range []struct {
		name string
		url  *string
		kind event.Kind
		code int
	}{{"imp", &ad.Imp, event.KindViewable, 204}, {"click", &ad.Click, event.KindClick, 302}} {
		t.Run(c.name, func(t *testing.T) {
			u, err := url.Parse(*c.url)
			if err != nil || u.RawQuery == "" {
				t.Fatalf("token URL %q", *c.url)
			}
			if code, body := d.edgeDo(t, "GET", u.Path+"?"+u.RawQuery, "", "198.51.100.80"); code != c.code {
				t.Fatalf("%s: %d %s", c.name, code, body)
			}
			evs, _ := d.next(t, &seq, 1)
			if e := evs[0]; e.Kind != c.kind || e.Site != "demo" || e.Slot != "top" || e.IP != "" {
				t.Errorf("stored %+v", e)
			}
		})
	}
	t.Run("call", func(t *testing.T) {
		body := `{"tracking_number":"` + doorNumber + `","start":"` + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) +
			`","duration_s":61,"call_type":"inbound-4951234567","caller_number":"+7 916 123-45-67"}`
		if code, resp := d.api(t, "POST", "/v1/events/call", d.keys["telephony"], body); code != 202 {
			t.Fatalf("call: %d %s", code, resp)
		}
		evs, msgs := d.next(t, &seq, 1)
		check(t, evs[0], want{kind: event.KindCall, name: "inbound", ar: "+7 916"})
		if strings.Contains(string(msgs[0]), "4951234567") || strings.Contains(string(msgs[0]), "123-45-67") {
			t.Errorf("a phone number is stored: %q", msgs[0])
		}
	})

	// Bad input at every door gets its usual answer.
	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"GET", "/p.gif?u=%FF%FE&site=%C0%AF&c=" + strings.Repeat("x,", 3000), "", 200},
		{"POST", "/p", strings.Repeat("z", 100000), 200}, // too large for the server: the GIF
		{"GET", "/ad?site=%FF&slot=&url=javascript:alert(1)", "", 400},
		{"GET", "/ad?site=nosuch&slot=top&c=%FF&url=javascript:alert(1)", "", 204},
		{"GET", "/imp?t=forged", "", 400},
		{"GET", "/click?t=forged", "", 400},
	} {
		if code, _ := d.edgeDo(t, c.method, c.path, c.body, "garbage, ::::"); code != c.code {
			t.Errorf("%s %.40s: %d, want %d", c.method, c.path, code, c.code)
		}
	}
	if code, body := d.api(t, "POST", "/v1/events/call", d.keys["telephony"], `{"tracking_number":"john@example.com"}`); code != 400 || !strings.Contains(body, `"error":{"code":`) {
		t.Errorf("bad call: %d %s", code, body)
	}
}
