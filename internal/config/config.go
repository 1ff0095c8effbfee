package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// Roles a process can run.
const (
	RoleEdge        = "edge"
	RoleSegments    = "segments"
	RoleStats       = "stats"
	RoleSyndication = "syndication"
	RoleAPI         = "api"
)

// EEA lists the EEA countries, the United Kingdom and Switzerland: the
// default GDPR region when a geo database is configured.
var EEA = []string{"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
	"LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "GB", "CH"}

// AllRoles is the default: everything in one process.
var AllRoles = []string{RoleEdge, RoleSegments, RoleStats, RoleSyndication, RoleAPI}

// Config is everything adsyn serve needs.
type Config struct {
	DataDir    string
	HTTPAddr   string
	APIAddr    string
	NATSURLs   string // empty: run an embedded server
	NATSListen string
	Replicas   int
	Roles      []string
	Demo       bool

	Partitions int
	Retention  time.Duration
	SegmentTTL time.Duration
	// StatsRetention keeps an hour's statistics this long (0: forever).
	StatsRetention time.Duration
	// TaxonomyFile replaces the segment taxonomy in force (for every process).
	TaxonomyFile string
	// SegmentCacheMB bounds an edge's cache of visitor records.
	SegmentCacheMB int
	// EventBufferMB bounds the events an edge holds while NATS is away;
	// past it they are dropped and counted.
	EventBufferMB int
	// AllowPrivatePartners lets partner endpoints be loopback or private
	// addresses (link-local and metadata ones stay refused); --demo sets it.
	AllowPrivatePartners bool

	TCFVendorID    int
	GDPRByDefault  bool
	TrustedProxies []netip.Prefix
	SecureCookies  bool
	CookieDomain   string
	IPv4Bits       int
	IPv6Bits       int
	GeoIPFile      string
	GDPRCountries  []string // with a geo database: requests from these countries are in GDPR scope

	ProfileKeys string // keyring file for contact fields at rest; default <data>/profile.keys
	APIURL      string // public base URL of the API, for photo links in partner views

	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
}

// Default returns the configuration of a single machine.
func Default() Config {
	return Config{
		DataDir:         "./data",
		HTTPAddr:        ":8080",
		APIAddr:         ":8081",
		NATSListen:      "127.0.0.1:4222",
		Replicas:        1,
		Roles:           slices.Clone(AllRoles),
		Partitions:      16,
		Retention:       720 * time.Hour,
		SegmentTTL:      90 * 24 * time.Hour,
		StatsRetention:  400 * 24 * time.Hour,
		SegmentCacheMB:  256,
		EventBufferMB:   256,
		IPv4Bits:        24,
		IPv6Bits:        48,
		GDPRCountries:   slices.Clone(EEA),
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 15 * time.Second,
	}
}

// Has reports whether the process runs role.
func (c *Config) Has(role string) bool { return slices.Contains(c.Roles, role) }

// Flags registers every setting on fs, with c's values as defaults.
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data", c.DataDir, "directory for the embedded NATS store and generated keys")
	fs.StringVar(&c.HTTPAddr, "http", c.HTTPAddr, "edge address (pixel, ads, tag)")
	fs.StringVar(&c.APIAddr, "api", c.APIAddr, "API address (JSON API, dashboard, metrics, health)")
	fs.StringVar(&c.NATSURLs, "nats", c.NATSURLs, "NATS URLs of a cluster, comma-separated; empty runs NATS embedded")
	fs.StringVar(&c.NATSListen, "nats-listen", c.NATSListen, "client address of the embedded NATS server")
	fs.IntVar(&c.Replicas, "replicas", c.Replicas, "JetStream replicas for streams and buckets (3 on a cluster)")
	fs.Func("roles", "roles this process runs, comma-separated: "+strings.Join(AllRoles, ","), func(s string) error {
		c.Roles = splitList(s)
		return nil
	})
	fs.BoolVar(&c.Demo, "demo", c.Demo, "load sample advertisers, campaigns, users and a partner; serve /demo")
	fs.IntVar(&c.Partitions, "partitions", c.Partitions, "event partitions N (xxhash64(visitor) mod N)")
	fs.DurationVar(&c.Retention, "retention", c.Retention, "how long events are kept")
	fs.DurationVar(&c.StatsRetention, "stats-retention", c.StatsRetention, "how long hourly statistics are kept (0: forever)")
	fs.DurationVar(&c.SegmentTTL, "segment-ttl", c.SegmentTTL, "a visitor record expires after this long without events")
	fs.StringVar(&c.TaxonomyFile, "taxonomy", c.TaxonomyFile, "a segment taxonomy JSON file to put in force (sensitive segments are refused)")
	fs.IntVar(&c.SegmentCacheMB, "segment-cache-mb", c.SegmentCacheMB, "memory bound of an edge's cache of visitor records, in MiB")
	fs.IntVar(&c.EventBufferMB, "event-buffer-mb", c.EventBufferMB, "memory bound of the events an edge holds until NATS acknowledges them, in MiB; past it events are dropped and counted")
	fs.BoolVar(&c.AllowPrivatePartners, "allow-private-partners", c.AllowPrivatePartners, "let partner webhook URLs be loopback or private addresses (link-local and cloud metadata stay refused)")
	fs.IntVar(&c.TCFVendorID, "tcf-vendor-id", c.TCFVendorID, "the IAB TCF vendor id adsyn answers for (0: TCF strings grant nothing)")
	fs.BoolVar(&c.GDPRByDefault, "gdpr-default", c.GDPRByDefault, "treat requests that do not say gdpr=0/1 as in GDPR scope")
	fs.Func("trusted-proxies", "CIDRs whose X-Forwarded-For is believed, comma-separated", func(s string) error {
		c.TrustedProxies = nil
		for _, p := range splitList(s) {
			pfx, err := netip.ParsePrefix(p)
			if err != nil {
				addr, aerr := netip.ParseAddr(p)
				if aerr != nil {
					return fmt.Errorf("%q is not a CIDR or an address", p)
				}
				pfx = netip.PrefixFrom(addr, addr.BitLen())
			}
			c.TrustedProxies = append(c.TrustedProxies, pfx.Masked())
		}
		return nil
	})
	fs.BoolVar(&c.SecureCookies, "secure-cookies", c.SecureCookies, "mark cookies Secure; SameSite=None (set it when TLS ends at a proxy)")
	fs.StringVar(&c.CookieDomain, "cookie-domain", c.CookieDomain, "domain of the visitor cookie (default: the edge host)")
	fs.IntVar(&c.IPv4Bits, "ip-v4-bits", c.IPv4Bits, "IPv4 prefix kept at capture (P6)")
	fs.IntVar(&c.IPv6Bits, "ip-v6-bits", c.IPv6Bits, "IPv6 prefix kept at capture (P6)")
	fs.StringVar(&c.GeoIPFile, "geoip", c.GeoIPFile, "MaxMind-format country/city database (optional)")
	fs.Func("gdpr-countries", "ISO countries whose visitors are in GDPR scope (needs --geoip; default: the EEA, UK and Switzerland)", func(s string) error {
		c.GDPRCountries = nil
		for _, cc := range splitList(s) {
			if len(cc) != 2 {
				return fmt.Errorf("%q is not a two-letter country code", cc)
			}
			c.GDPRCountries = append(c.GDPRCountries, strings.ToUpper(cc))
		}
		return nil
	})
	fs.StringVar(&c.ProfileKeys, "profile-keys", c.ProfileKeys, "keyring of AES-256 keys for contact fields (id:base64 lines, last is current); default DATA/profile.keys, made at first start")
	fs.StringVar(&c.APIURL, "api-url", c.APIURL, "public base URL of the API, used in partner feeds for photo links (default http://<api address>)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long a stop may take to drain")
}

// EnvName is the environment variable of a flag: ADSYN_ and the name in capitals.
func EnvName(flagName string) string {
	return "ADSYN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ApplyEnv sets every flag not given on the command line from its
// environment variable, if present.
func ApplyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// Validate names the first offending setting.
func (c *Config) Validate() error {
	bad := func(flagName, format string, args ...any) error {
		return fmt.Errorf("--%s (%s): %s", flagName, EnvName(flagName), fmt.Sprintf(format, args...))
	}
	if c.DataDir == "" {
		return bad("data", "must not be empty")
	}
	for name, addr := range map[string]string{"http": c.HTTPAddr, "api": c.APIAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return bad(name, "%q is not host:port (e.g. :8080)", addr)
		}
	}
	if c.NATSURLs == "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			return bad("nats-listen", "%q is not host:port", c.NATSListen)
		}
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return bad("replicas", "%d: must be 1 to 5", c.Replicas)
	}
	if c.Replicas > 1 && c.NATSURLs == "" {
		return bad("replicas", "%d replicas need a NATS cluster (--nats)", c.Replicas)
	}
	if len(c.Roles) == 0 {
		return bad("roles", "name at least one of %s", strings.Join(AllRoles, ","))
	}
	for _, r := range c.Roles {
		if !slices.Contains(AllRoles, r) {
			return bad("roles", "unknown role %q; roles are %s", r, strings.Join(AllRoles, ","))
		}
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		return bad("partitions", "%d: must be 1 to 1024", c.Partitions)
	}
	if c.Retention < time.Hour {
		return bad("retention", "%s: must be at least 1h", c.Retention)
	}
	if c.StatsRetention != 0 && c.StatsRetention < 24*time.Hour {
		return bad("stats-retention", "%s: must be 0 (forever) or at least 24h", c.StatsRetention)
	}
	if c.SegmentTTL < time.Hour {
		return bad("segment-ttl", "%s: must be at least 1h", c.SegmentTTL)
	}
	if c.SegmentCacheMB < 1 || c.SegmentCacheMB > 1<<20 {
		return bad("segment-cache-mb", "%d: must be 1 to 1048576", c.SegmentCacheMB)
	}
	if c.EventBufferMB < 1 || c.EventBufferMB > 1<<20 {
		return bad("event-buffer-mb", "%d: must be 1 to 1048576", c.EventBufferMB)
	}
	if c.TCFVendorID < 0 || c.TCFVendorID > 65535 {
		return bad("tcf-vendor-id", "%d: must be 0 to 65535", c.TCFVendorID)
	}
	if c.IPv4Bits < 0 || c.IPv4Bits > 32 {
		return bad("ip-v4-bits", "%d: must be 0 to 32", c.IPv4Bits)
	}
	if c.IPv6Bits < 0 || c.IPv6Bits > 128 {
		return bad("ip-v6-bits", "%d: must be 0 to 128", c.IPv6Bits)
	}
	if c.GeoIPFile != "" {
		if _, err := os.Stat(c.GeoIPFile); err != nil {
			return bad("geoip", "%v", err)
		}
	}
	if c.APIURL != "" && !strings.HasPrefix(c.APIURL, "http://") && !strings.HasPrefix(c.APIURL, "https://") {
		return bad("api-url", "%q must start with http:// or https://", c.APIURL)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		return bad("log-level", "%q: must be debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return bad("log-format", "%q: must be text or json", c.LogFormat)
	}
	if c.ShutdownTimeout <= 0 {
		return bad("shutdown-timeout", "must be positive")
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
