package app

import (
	"github.com/adsyn/adsyn/adserver"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/syndication"
)

// demoOwners are the owners of the demo keys.
var demoOwners = map[auth.Role]string{
	auth.Marketer:  adserver.DemoAdvertiser,
	auth.Publisher: adserver.DemoPublisher,
	auth.Partner:   syndication.DemoID,
}
