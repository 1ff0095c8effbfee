package device

// botPatterns are User-Agent substrings (any case) of clients that are not a
// person's browser. Specific names come first for readability; the generic
// tokens at the end catch most of the long tail ("+http" is the crawler's
// contact URL, as in "(compatible; Foo/1.0; +https://foo.example/bot)").
var botPatterns = [...]string{
	// search and AI crawlers
	"googlebot", "adsbot-google", "mediapartners-google", "apis-google",
	"feedfetcher-google", "google-inspectiontool", "googleother", "storebot-google",
	"bingbot", "bingpreview", "msnbot", "adidxbot",
	"yandexbot", "yandex.com/bots", "baiduspider", "duckduckbot", "applebot",
	"slurp", "seznambot", "petalbot", "bytespider", "amazonbot",
	"gptbot", "chatgpt-user", "oai-searchbot", "claudebot", "anthropic-ai",
	"perplexitybot", "ccbot",
	// SEO tools
	"ahrefsbot", "semrushbot", "mj12bot", "dotbot", "blexbot", "dataforseobot",
	"screaming frog",
	// link previews
	"facebookexternalhit", "facebookcatalog", "meta-externalagent", "twitterbot",
	"linkedinbot", "slackbot", "discordbot", "telegrambot", "whatsapp/",
	"pinterestbot", "redditbot", "skypeuripreview", "embedly",
	// monitoring
	"uptimerobot", "pingdom", "statuscake", "site24x7", "newrelicpinger",
	"datadogsynthetics", "checkly", "gtmetrix", "chrome-lighthouse",
	"elb-healthchecker", "kube-probe", "blackbox exporter", "check_http", "zabbix",
	// HTTP libraries and tools
	"curl/", "wget/", "python-requests", "python-urllib", "python-httpx",
	"aiohttp", "go-http-client", "java/", "okhttp", "apache-httpclient",
	"libwww-perl", "node-fetch", "axios/", "undici", "postmanruntime", "insomnia/",
	"httpie", "guzzlehttp", "scrapy", "wordpress/",
	// headless and automated browsers
	"headless", "phantomjs", "slimerjs", "puppeteer", "playwright", "selenium",
	// generic
	"bot/", "crawl", "spider", "+http", // "spider" also catches Sogou's crawler, not its browser
}

var botTokens = newMatcher(botPatterns[:]...)

// IsBot reports whether ua is a known crawler, monitoring tool, HTTP library
// or headless browser, ignoring case. An empty or blank User-Agent is a bot:
// every browser sends one.
func IsBot(ua []byte) bool {
	if len(trimSpace(ua)) == 0 {
		return true
	}
	return botTokens.index(ua) >= 0
}

// IsPrefetch reports whether the request is a speculative prefetch, which a
// pixel should not count as a view: "Purpose: prefetch" (older Chrome),
// "Sec-Purpose: prefetch" with optional parameters ("prefetch;prerender") or
// "X-Moz: prefetch" (Firefox).
func IsPrefetch(purpose, secPurpose, xMoz []byte) bool {
	return isPrefetchToken(purpose) || isPrefetchToken(secPurpose) || isPrefetchToken(xMoz)
}

// isPrefetchToken reports whether v's first item, before any ";" parameters,
// is the token prefetch.
func isPrefetchToken(v []byte) bool {
	for i, c := range v {
		if c == ';' || c == ',' {
			v = v[:i]
			break
		}
	}
	return equalFold(trimSpace(v), "prefetch")
}
