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
	// Credentials and TLS for the cluster of NATSURLs (at most one of
	// creds, nkey, user); the embedded server uses the files it made in
	// DataDir.
	NATSCreds    string
	NATSNKey     string
	NATSUser     string
	NATSPassword string
	NATSTLSCert  string
	NATSTLSKey   string
	NATSTLSCA    string
	// NATSDownLimit is how long NATS may stay unreachable before /healthz
	// fails, so that a supervisor restarts the process.
	NATSDownLimit time.Duration
	Replicas      int
	// Takeover is how long the work a crashed worker held waits before
	// another process takes it over (JetStream ack wait); 0: each role's
	// default.
	Takeover time.Duration
	Roles    []string
	Demo     bool

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
	// StatsCacheMB bounds the stats API's cache of decoded records and
	// merged days (0: none).
	StatsCacheMB int
	// AllowPrivatePartners lets partner endpoints be loopback or private
	// addresses (link-local and metadata ones stay refused); --demo sets it.
	AllowPrivatePartners bool

	// APIRate and APIIPRate are the API's requests per second per key and
	// per client address (bursts twice that); 0 turns a limit off.
	APIRate   float64
	APIIPRate float64
	// AdVisitorCeiling is the impressions charged per visitor per minute on
	// an edge; past it ads are answered but not charged (0: no ceiling).
	AdVisitorCeiling int
	// AdRecordWait is how long /ad waits for a visitor record the edge's
	// cache does not hold before deciding without it, failing closed;
	// negative: as long as the read takes.
	AdRecordWait time.Duration

	TCFVendorID    int
	GDPRByDefault  bool
	TrustedProxies []netip.Prefix
	SecureCookies  bool
	// PartitionedCookies adds CHIPS Partitioned to the visitor id cookie.
	PartitionedCookies bool
	CookieDomain       string
	IPv4Bits           int
	IPv6Bits           int
	GeoIPFile          string
	GDPRCountries      []string // with a geo database: requests from these countries are in GDPR scope

	ProfileKeys string // keyring file for contact fields at rest; default <data>/profile.keys
	APIURL      string // public base URL of the API, for photo links in partner views

	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
}

// Default returns the configuration of a single machine.
func Default() Config {
	return Config{
		DataDir:          "./data",
		HTTPAddr:         ":8080",
		APIAddr:          ":8081",
		NATSListen:       "127.0.0.1:4222",
		NATSDownLimit:    2 * time.Minute,
		Replicas:         1,
		Roles:            slices.Clone(AllRoles),
		Partitions:       16,
		Retention:        720 * time.Hour,
		SegmentTTL:       90 * 24 * time.Hour,
		StatsRetention:   400 * 24 * time.Hour,
		SegmentCacheMB:   256,
		EventBufferMB:    256,
		StatsCacheMB:     64,
		APIRate:          50,
		APIIPRate:        100,
		AdVisitorCeiling: 120,
		AdRecordWait:     time.Millisecond,
		IPv4Bits:         24,
		IPv6Bits:         48,
		GDPRCountries:    slices.Clone(EEA),
		LogLevel:         "info",
		LogFormat:        "text",
		ShutdownTimeout:  15 * time.Second,
	}
}

// Has reports whether the process runs role.
func (c *Config) Has(role string) bool { return slices.Contains(c.Roles, role) }

// ConnFlags registers the settings a command needs to reach NATS: the data
// directory and its embedded server, or a cluster with its credentials.
func (c *Config) ConnFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data", c.DataDir, "directory for the embedded NATS store, its credentials and generated keys")
	fs.StringVar(&c.NATSURLs, "nats", c.NATSURLs, "NATS URLs of a cluster, comma-separated; empty: the embedded server of --data")
	fs.StringVar(&c.NATSListen, "nats-listen", c.NATSListen, "client address of the embedded NATS server")
	fs.StringVar(&c.NATSCreds, "nats-creds", c.NATSCreds, "with --nats: a .creds file (user JWT and seed)")
	fs.StringVar(&c.NATSNKey, "nats-nkey", c.NATSNKey, "with --nats: an NKey user seed file (SU…)")
	fs.StringVar(&c.NATSUser, "nats-user", c.NATSUser, "with --nats: user name")
	fs.StringVar(&c.NATSPassword, "nats-password", c.NATSPassword, "with --nats-user: password (prefer the environment, ADSYN_NATS_PASSWORD)")
	fs.StringVar(&c.NATSTLSCert, "nats-tls-cert", c.NATSTLSCert, "with --nats: client certificate (PEM), when the servers verify clients")
	fs.StringVar(&c.NATSTLSKey, "nats-tls-key", c.NATSTLSKey, "with --nats-tls-cert: its private key (PEM)")
	fs.StringVar(&c.NATSTLSCA, "nats-tls-ca", c.NATSTLSCA, "with --nats: CA certificates (PEM) of the servers; default: the system's")
}

// Flags registers every setting on fs, with c's values as defaults.
func (c *Config) Flags(fs *flag.FlagSet) {
	c.ConnFlags(fs)
	fs.StringVar(&c.HTTPAddr, "http", c.HTTPAddr, "edge address (pixel, ads, tag)")
	fs.StringVar(&c.APIAddr, "api", c.APIAddr, "API address (JSON API, dashboard, metrics, health)")
	fs.DurationVar(&c.NATSDownLimit, "nats-down-limit", c.NATSDownLimit, "how long NATS may stay unreachable before /healthz fails")
	fs.IntVar(&c.Replicas, "replicas", c.Replicas, "JetStream replicas for streams and buckets (3 on a cluster)")
	fs.DurationVar(&c.Takeover, "takeover", c.Takeover, "how long the work of a crashed segments, stats or syndication process waits before another takes it over (0: 30s for segments and stats, 10s for syndication)")
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
	fs.IntVar(&c.StatsCacheMB, "stats-cache-mb", c.StatsCacheMB, "memory bound of the stats API's cache of decoded hourly records and merged days, in MiB (0: none; every query reads and decodes its records)")
	fs.IntVar(&c.EventBufferMB, "event-buffer-mb", c.EventBufferMB, "memory bound of the events an edge holds until NATS acknowledges them, in MiB; past it events are dropped and counted")
	fs.BoolVar(&c.AllowPrivatePartners, "allow-private-partners", c.AllowPrivatePartners, "let partner webhook URLs be loopback or private addresses (link-local and cloud metadata stay refused)")
	fs.Float64Var(&c.APIRate, "api-rate", c.APIRate, "API requests per second per key, bursts twice that; over it: 429 (0: no limit)")
	fs.Float64Var(&c.APIIPRate, "api-ip-rate", c.APIIPRate, "API requests per second per client address (IPv6: per /64; X-Forwarded-For from --trusted-proxies), bursts twice that (0: no limit)")
	fs.DurationVar(&c.AdRecordWait, "ad-record-wait", c.AdRecordWait, "how long /ad waits for a visitor record its cache lacks; past it the ad leaves out campaigns with caps or segment exclusions (-1ns: wait for the read)")
	fs.IntVar(&c.AdVisitorCeiling, "ad-visitor-ceiling", c.AdVisitorCeiling, "impressions charged per visitor per minute on an edge; past it ads are answered but not counted or charged (0: no ceiling)")
	fs.IntVar(&c.TCFVendorID, "tcf-vendor-id", c.TCFVendorID, "the IAB TCF vendor id adsyn answers for (0: TCF strings grant nothing)")
	fs.BoolVar(&c.GDPRByDefault, "gdpr-default", c.GDPRByDefault, "treat requests that do not say gdpr=0/1 as in GDPR scope")
	fs.Func("trusted-proxies", "CIDRs whose X-Forwarded-For and X-Forwarded-Proto are believed, comma-separated", func(s string) error {
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
	fs.BoolVar(&c.SecureCookies, "secure-cookies", c.SecureCookies, "mark every cookie Secure; SameSite=None, so publishers' pages send it (set it when TLS ends at a proxy that sends no X-Forwarded-Proto; without it that holds over TLS only, and plain HTTP gets SameSite=Lax, which browsers drop on other sites' pages)")
	fs.BoolVar(&c.PartitionedCookies, "partitioned-cookies", c.PartitionedCookies, "mark the visitor id cookie Partitioned (CHIPS), for browsers that block third-party cookies; it costs reach: the id is then one per top-level site, so no frequency caps or interests across sites (the opt-out cookie is never partitioned)")
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

func bad(flagName, format string, args ...any) error {
	return fmt.Errorf("--%s (%s): %s", flagName, EnvName(flagName), fmt.Sprintf(format, args...))
}

// ValidateConn names the first offending setting of ConnFlags.
func (c *Config) ValidateConn() error {
	if c.DataDir == "" {
		return bad("data", "must not be empty")
	}
	if c.NATSURLs == "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			return bad("nats-listen", "%q is not host:port", c.NATSListen)
		}
	} else {
		for _, u := range splitList(c.NATSURLs) {
			if !strings.Contains(u, "://") && strings.Count(u, ":") != 1 {
				return bad("nats", "%q is not a NATS URL (nats://host:port)", u)
			}
		}
	}
	files := []struct{ flag, path string }{
		{"nats-creds", c.NATSCreds}, {"nats-nkey", c.NATSNKey},
		{"nats-tls-cert", c.NATSTLSCert}, {"nats-tls-key", c.NATSTLSKey}, {"nats-tls-ca", c.NATSTLSCA},
	}
	given := 0
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if c.NATSURLs == "" {
			return bad(f.flag, "is for a cluster (--nats); the embedded server uses the credentials in --data")
		}
		if _, err := os.Stat(f.path); err != nil {
			return bad(f.flag, "%v", err)
		}
	}
	for _, v := range []string{c.NATSCreds, c.NATSNKey, c.NATSUser} {
		if v != "" {
			given++
		}
	}
	switch {
	case (c.NATSUser != "" || c.NATSPassword != "") && c.NATSURLs == "":
		return bad("nats-user", "is for a cluster (--nats); the embedded server uses the credentials in --data")
	case given > 1:
		return bad("nats-creds", "give one of --nats-creds, --nats-nkey and --nats-user")
	case c.NATSUser != "" && c.NATSPassword == "":
		return bad("nats-password", "--nats-user needs a password")
	case c.NATSPassword != "" && c.NATSUser == "":
		return bad("nats-user", "a password needs --nats-user")
	case (c.NATSTLSCert == "") != (c.NATSTLSKey == ""):
		return bad("nats-tls-key", "--nats-tls-cert and --nats-tls-key go together")
	}
	return nil
}

// Validate names the first offending setting.
func (c *Config) Validate() error {
	if err := c.ValidateConn(); err != nil {
		return err
	}
	if c.NATSDownLimit < time.Second {
		return bad("nats-down-limit", "%s: must be at least 1s", c.NATSDownLimit)
	}
	for name, addr := range map[string]string{"http": c.HTTPAddr, "api": c.APIAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return bad(name, "%q is not host:port (e.g. :8080)", addr)
		}
	}
	if c.Takeover != 0 && (c.Takeover < time.Second || c.Takeover > 5*time.Minute) {
		return bad("takeover", "%s: must be 0 or 1s to 5m", c.Takeover)
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
	if c.StatsCacheMB < 0 || c.StatsCacheMB > 1<<20 {
		return bad("stats-cache-mb", "%d: must be 0 to 1048576", c.StatsCacheMB)
	}
	if c.EventBufferMB < 1 || c.EventBufferMB > 1<<20 {
		return bad("event-buffer-mb", "%d: must be 1 to 1048576", c.EventBufferMB)
	}
	for _, r := range []struct {
		flag string
		v    float64
	}{{"api-rate", c.APIRate}, {"api-ip-rate", c.APIIPRate}} {
		// !(v >= 0) also refuses NaN.
		if !(r.v >= 0) || r.v > 1e6 {
			return bad(r.flag, "%g: must be 0 (no limit) to 1000000 requests per second", r.v)
		}
	}
	if c.AdRecordWait > time.Second {
		return bad("ad-record-wait", "%s: must be at most 1s (negative: wait for the read)", c.AdRecordWait)
	}
	if c.AdVisitorCeiling < 0 || c.AdVisitorCeiling > 1_000_000 {
		return bad("ad-visitor-ceiling", "%d: must be 0 (no ceiling) to 1000000 per minute", c.AdVisitorCeiling)
	}
	if c.TCFVendorID < 0 || c.TCFVendorID > 65535 {
		return bad("tcf-vendor-id", "%d: must be 0 to 65535", c.TCFVendorID)
	}
	if c.IPv4Bits < 0 || c.IPv4Bits > 24 {
		return bad("ip-v4-bits", "%d: must be 0 to %d: a full address is never stored (P6)", c.IPv4Bits, 24)
	}
	if c.IPv6Bits < 0 || c.IPv6Bits > 64 {
		return bad("ip-v6-bits", "%d: must be 0 to %d: a full address is never stored (P6)", c.IPv6Bits, 64)
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
