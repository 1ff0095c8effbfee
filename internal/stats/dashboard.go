package stats

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
)

//go:embed dashboard/index.html
var dashboardFS embed.FS

// dashboardPage is the page and its Content-Security-Policy, which admits
// the page's own inline script and style by their hashes and nothing else
// but calls to this origin.
var dashboardPage, dashboardCSP = func() ([]byte, string) {
	page, err := dashboardFS.ReadFile("dashboard/index.html")
	if err != nil {
		panic(err) // embedded at build time
	}
	hashes := func(tag string) string {
		re := regexp.MustCompile(`(?s)<` + tag + `>(.*?)</` + tag + `>`)
		var out []string
		for _, m := range re.FindAllSubmatch(page, -1) {
			sum := sha256.Sum256(m[1])
			out = append(out, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		}
		return strings.Join(out, " ")
	}
	csp := "default-src 'none'; script-src " + hashes("script") + "; style-src " + hashes("style") +
		"; connect-src 'self'; img-src 'self' data: blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return page, csp
}()

// serveDashboard answers GET /dashboard: one page that signs in with an API
// key and calls the JSON API with it.
func serveDashboard(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(dashboardPage)
}
