package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/adsyn/adsyn/internal/profiles"
)

// userBodies are the demo users, as registration bodies: Anna syndicates
// her public profile and lets it advertise; Boris keeps his to himself.
var userBodies = []string{
	`{"name":"Anna Petrova","email":"anna@example.org","phone":"+7 495 123-45-67","city":"Moscow",
	  "competence":["plumbing","heating"],"price":{"amount":"40","currency":"EUR"},"language":"ru",
	  "visibility":{"name":"public","city":"public","competence":"public","price":"public"},
	  "consents":{"syndication":true,"ad_profile":true},"consent_source":"demo"}`,
	`{"name":"Boris Ivanov","email":"boris@example.org","city":"Kazan","competence":["tutoring","mathematics"],
	  "visibility":{"name":"public","city":"public"},"consents":{"syndication":false},"consent_source":"demo"}`,
}

// Users registers the demo users, once: when Anna is found in the search
// index, nothing is done.
func Users(ctx context.Context, store *profiles.Store, log *slog.Logger) error {
	if len(store.Search(profiles.Query{Name: "Anna Petrova"})) > 0 {
		return nil
	}
	for _, body := range userBodies {
		var pt profiles.Patch
		if err := json.Unmarshal([]byte(body), &pt); err != nil {
			return fmt.Errorf("demo: user: %w", err)
		}
		if _, err := store.Create(ctx, &pt, "demo"); err != nil {
			return fmt.Errorf("demo: user: %w", err)
		}
	}
	if log != nil {
		log.Info("demo users registered", "users", len(userBodies))
	}
	return nil
}

// Pixel is the tracking pixel of the demo publisher page the edge serves
// at /demo.
const Pixel = `<img alt="" width="1" height="1" style="position:absolute" src="/p.gif?site=demo&amp;c=home-repair,plumbing">`
