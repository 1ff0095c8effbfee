package pixel_test

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/adsyn/adsyn/adserver"
	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/privacy"
	"github.com/adsyn/adsyn/pixel"
)

// Addresses of the test geo database: one in the EEA, one outside it.
var (
	addrDE = netip.MustParseAddr("81.2.69.10")
	addrUS = netip.MustParseAddr("8.8.8.8")
	proxy  = netip.MustParsePrefix("10.0.0.0/8")
)

// geoDB builds a small MaxMind-format database, as an operator's --geoip.
func geoDB(t testing.TB) *adserver.Geo {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoIP2-City", RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, cc := range map[string]string{"81.2.69.0/24": "DE", "8.8.8.0/24": "US"} {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(cc)}}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	geo, err := adserver.OpenGeoBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = geo.Close() })
	return geo
}

// servedOptions are the pixel's options as `adsyn serve` wires them
// (internal/app wireEdge): the configuration's defaults, a TCF vendor id,
// a trusted proxy, the geo database's country hook, the GDPR region test
// and the process's metrics registry.
func servedOptions(t testing.TB) pixel.Options {
	cfg := config.Default()
	cfg.TCFVendorID = vendorID
	cfg.TrustedProxies = []netip.Prefix{proxy}
	geo := geoDB(t)
	return pixel.Options{
		Consent: consent.Policy{VendorID: cfg.TCFVendorID, GDPRByDefault: cfg.GDPRByDefault},
		Cookies: pixel.Cookies{Secure: cfg.SecureCookies, Partitioned: cfg.PartitionedCookies,
			Domain: cfg.CookieDomain, TrustedProxies: cfg.TrustedProxies},
		TrustedProxies: cfg.TrustedProxies,
		Country:        func(a netip.Addr) string { c, _ := geo.Lookup(a); return c },
		InRegion:       func(c string) bool { return c != "" && slices.Contains(cfg.GDPRCountries, c) },
		Metrics:        metrics.NewProcessRegistry(),
	}
}

// scrubbing publishes as bus.Publisher does up to the network: a copy of
// the event through the production choke point (the built-in sensitive-term
// guard, the configured IP prefixes), then encoded.
type scrubbing struct {
	scrub *privacy.Scrubber
	sc    privacy.Scratch
	ev    event.Event
	cats  []string
	buf   []byte
}

func newScrubbing(t testing.TB) *scrubbing {
	cfg := config.Default()
	s, err := privacy.New(privacy.Options{IPv4Bits: cfg.IPv4Bits, IPv6Bits: cfg.IPv6Bits, Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	return &scrubbing{scrub: s, buf: make([]byte, 0, 4096)}
}

func (p *scrubbing) Publish(e *event.Event) bool {
	p.ev = *e
	p.cats = append(p.cats[:0], e.Categories...)
	p.ev.Categories = p.cats
	p.scrub.Scrub(&p.ev, &p.sc)
	p.buf = p.ev.AppendMsgpack(p.buf[:0])
	return true
}
