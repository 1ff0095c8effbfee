package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/api/apitest"
)

// TestPixelToSegments follows one visitor through the whole process: pixel
// hits with consent become events, the builder turns them into a visitor
// record, and an admin sees the segment (and the read is audit-logged).
func TestPixelToSegments(t *testing.T) {
	a, out := start(t, testConfig(t))
	admin := ""
	for _, f := range strings.Fields(out.String()) {
		if strings.HasPrefix(f, "adsyn_") {
			admin = f
		}
	}
	const visitor = "AbCdEfGhIjKlMnOpQrStUv"
	for range 3 {
		req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + a.EdgeAddr() + "/p.gif?site=s1&e=search&q=plumber+repair&c=home-repair")
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36")
		req.Header.Set("Cookie", "uid="+visitor)
		if err := fasthttp.DoTimeout(req, res, 5*time.Second); err != nil || res.StatusCode() != 200 {
			t.Fatalf("pixel: %v %d", err, res.StatusCode())
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(res)
	}
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest("GET", "http://"+a.APIAddr()+"/v1/visitors/"+visitor+"/segments", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		res, err := apitest.Client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		body = string(b)
		if res.StatusCode == 200 && strings.Contains(body, "plumb") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no plumbing segment for the visitor: %d %s", res.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(body, "plumber repair") {
		t.Error("the raw search query is held in the visitor record")
	}
	req, _ := http.NewRequest("GET", "http://"+a.APIAddr()+"/v1/audit", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	res, err := apitest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var audit struct {
		Entries []struct {
			Resource string `json:"resource"`
		} `json:"entries"`
	}
	if err := json.NewDecoder(res.Body).Decode(&audit); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range audit.Entries {
		found = found || strings.Contains(e.Resource, visitor)
	}
	if !found {
		t.Errorf("the staff read of the visitor record is not in the audit log: %+v", audit.Entries)
	}
}
