package profiles

import "slices"

// Public is the part of a profile that may be shown to anyone: never a
// contact detail or the resume (P2), only fields the user made public.
type Public struct {
	ID         string   `json:"id"`
	Name       string   `json:"name,omitempty"`
	Photo      string   `json:"photo,omitempty"` // path of the public photo on the API
	City       string   `json:"city,omitempty"`
	Competence []string `json:"competence,omitempty"`
	Price      *Price   `json:"price,omitempty"`
	Language   string   `json:"language,omitempty"`
}

// Empty reports whether v shows nothing.
func (v Public) Empty() bool {
	return v.Name == "" && v.Photo == "" && v.City == "" && len(v.Competence) == 0 && v.Price == nil && v.Language == ""
}

// PhotoPath is where the public photo of user id is served.
func PhotoPath(id string) string { return "/v1/profiles/" + id + "/photo" }

// SiteView is the public profile on the Site: the fields the user made public.
func SiteView(p *Profile) Public {
	v := Public{ID: p.ID}
	// Built field by field from the allowlist of public fields.
	if p.IsPublic(FieldName) {
		v.Name = p.Name
	}
	if p.IsPublic(FieldPhoto) && p.Photo != nil {
		v.Photo = PhotoPath(p.ID)
	}
	if p.IsPublic(FieldCity) {
		v.City = p.City
	}
	if p.IsPublic(FieldCompetence) {
		v.Competence = slices.Clone(p.Competence)
	}
	if p.IsPublic(FieldPrice) && p.Price != nil {
		pr := *p.Price
		v.Price = &pr
	}
	if p.IsPublic(FieldLanguage) {
		v.Language = p.Language
	}
	return v
}

// PublicView is what the ad server may show in a profile creative: the public
// fields, and only when the user consented to advertising use of the public
// profile; otherwise the zero Public.
func PublicView(p *Profile) Public {
	if p == nil || !p.Consented(AdProfile) {
		return Public{}
	}
	return SiteView(p)
}
