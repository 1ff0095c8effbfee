package syndication

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzSpecBody decodes a partner body as the handler does (strict JSON) and
// applies it: whatever comes in, a contact field never enters a contract.
func FuzzSpecBody(f *testing.F) {
	f.Add(`{"id":"acme","name":"Acme","url":"https://acme.example/hook","fields":["name","city"],"rate_limit":50}`)
	f.Add(`{"fields":["email","phone","resume"]}`)
	f.Add(`{"url":"javascript:alert(1)"}`)
	f.Add(`{"state":"active","rate_limit":1e308}`)
	f.Add(`{"name":"\u0000"}`)
	f.Fuzz(func(t *testing.T, body string) {
		var s Spec
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&s) != nil {
			return
		}
		p := Partner{ID: "p1", State: StateActive, Shards: 1}
		if err := applySpec(&p, &s, false); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		for _, f := range p.Fields {
			if !Eligible(f) {
				t.Fatalf("contract lists %q", f)
			}
		}
		if p.URL != "" && !strings.HasPrefix(p.URL, "http://") && !strings.HasPrefix(p.URL, "https://") {
			t.Fatalf("url %q", p.URL)
		}
		if p.RateLimit < 0 || (p.State != StateActive && p.State != StateDisabled) {
			t.Fatalf("partner %+v", p)
		}
	})
}

func FuzzParsePage(f *testing.F) {
	f.Add("0", "100")
	f.Add("18446744073709551615", "1")
	f.Add("-1", "0")
	f.Add("abc", "1001")
	f.Fuzz(func(t *testing.T, cursor, limit string) {
		pg, err := ParsePage(map[string][]string{"cursor": {cursor}, "limit": {limit}}, 1000)
		if err == nil && (pg.Limit < 1 || pg.Limit > 1000) {
			t.Fatalf("limit %d", pg.Limit)
		}
	})
}

func FuzzRetryAfter(f *testing.F) {
	f.Add("120")
	f.Add("Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add("-1")
	f.Add("99999999999999999999")
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter(v, time.Unix(1700000000, 0))
		if ok && (d < 0 || d > maxRetryAfter) {
			t.Fatalf("delay %v", d)
		}
	})
}
