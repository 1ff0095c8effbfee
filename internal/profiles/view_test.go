package profiles

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestViews(t *testing.T) {
	p := &Profile{ID: "u1", Name: "Ada", Email: "ada@example.com", Phone: "+33 123456", City: "Lyon",
		Competence: []string{"Go"}, Price: &Price{Amount: "45", Currency: "EUR"}, Language: "fr",
		Photo: &Media{Type: "image/png"}, Resume: &Media{Type: "application/pdf"},
		Public: []Field{FieldName, FieldPhoto, FieldCity}}
	site := SiteView(p)
	if site.Name != "Ada" || site.City != "Lyon" || site.Photo != "/v1/profiles/u1/photo" || site.Price != nil || site.Competence != nil || site.Language != "" {
		t.Errorf("site view %+v", site)
	}
	if !PublicView(p).Empty() {
		t.Error("ad view without ad_profile consent")
	}
	p.Consents = []Consent{{Purpose: AdProfile, Granted: true, At: time.Now()}}
	if got := PublicView(p); got.Name != "Ada" || got.City != "Lyon" || got.Price != nil {
		t.Errorf("ad view %+v", got)
	}
	p.Consents = append(p.Consents, Consent{Purpose: AdProfile, Granted: false})
	if !PublicView(p).Empty() {
		t.Error("ad view after withdrawal")
	}
	// Even with every field listed as public, contact details never show.
	p.Public = []Field{FieldEmail, FieldPhone, FieldResume, FieldName}
	b, _ := json.Marshal(SiteView(p))
	if strings.Contains(string(b), "ada@") || strings.Contains(string(b), "123456") || strings.Contains(string(b), "pdf") {
		t.Errorf("contact detail in %s", b)
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		kind Kind
		data string
		want string
	}{
		{KindPhoto, "\xff\xd8\xff\xe0rest", "image/jpeg"},
		{KindPhoto, "\x89PNG\r\n\x1a\nrest", "image/png"},
		{KindPhoto, "RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"},
		{KindPhoto, "%PDF-1.7", ""},
		{KindPhoto, "GIF89a", ""},
		{KindPhoto, "<svg onload=alert(1)>", ""},
		{KindResume, "%PDF-1.7\n", "application/pdf"},
		{KindResume, "\xff\xd8\xff\xe0", ""},
		{KindResume, "", ""},
	}
	for _, tt := range tests {
		got, err := Sniff(tt.kind, []byte(tt.data))
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("Sniff(%s, %q) = %q, %v; want %q", tt.kind, tt.data, got, err, tt.want)
		}
	}
	if _, err := Sniff(KindPhoto, make([]byte, MaxPhoto+1)); err == nil {
		t.Error("oversized photo accepted")
	}
}
