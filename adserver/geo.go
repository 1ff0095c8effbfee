package adserver

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Geo maps a client address to its country and region through a
// MaxMind-format database (GeoIP2/GeoLite2 Country or City, or DB-IP's
// equivalents). The address is looked up and forgotten: only the country
// code reaches events.
type Geo struct {
	r     *maxminddb.Reader
	cache [4096]atomic.Pointer[geoPlace]
}

type geoPlace struct {
	offset  uintptr
	country string
	region  string // "DE-BY"
}

type geoRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
}

// OpenGeo opens the database file (the --geoip flag).
func OpenGeo(path string) (*Geo, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("adserver: open geoip database: %w", err)
	}
	return &Geo{r: r}, nil
}

// OpenGeoBytes reads a database held in memory.
func OpenGeoBytes(b []byte) (*Geo, error) {
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("adserver: open geoip database: %w", err)
	}
	return &Geo{r: r}, nil
}

// Close releases the database.
func (g *Geo) Close() error { return g.r.Close() }

// Lookup returns the country code ("DE") and region ("DE-BY") of ip, or ""
// when unknown. Records are cached by their offset in the database, so a
// repeated place costs no allocation.
func (g *Geo) Lookup(ip netip.Addr) (country, region string) {
	if g == nil || !ip.IsValid() {
		return "", ""
	}
	res := g.r.Lookup(ip.Unmap())
	if !res.Found() {
		return "", ""
	}
	off := res.Offset()
	slot := &g.cache[(off^off>>12)%uintptr(len(g.cache))]
	if p := slot.Load(); p != nil && p.offset == off {
		return p.country, p.region
	}
	var rec geoRecord
	if err := res.Decode(&rec); err != nil {
		return "", ""
	}
	p := &geoPlace{offset: off}
	if cc, ok := normCountry(rec.Country.ISOCode); ok && len(cc) == 2 {
		p.country = cc
		if len(rec.Subdivisions) > 0 {
			if r, ok := normCountry(cc + "-" + rec.Subdivisions[0].ISOCode); ok {
				p.region = r
			}
		}
	}
	slot.Store(p)
	return p.country, p.region
}
