// Package adserver owns campaigns, creatives and publisher sites, the
// targeting index every edge builds from them, the ad decision, and the edge
// endpoints /ad, /tag.js, /click and /imp.
//
// The model (Advertiser, Campaign, Creative, Site) lives in the KV bucket
// adsyn_campaigns as JSON under adv.<id>, camp.<id>, crea.<id> and
// site.<id>; Store writes it, Handler serves it on the API with per-role
// ownership. Deleting a campaign or site leaves a tombstone, gone.camp.<id>
// or gone.site.<id>, holding its owner and the deletion time: statistics are
// keyed by the id, so another owner can never create that id again (409
// id_taken); the same owner may, and its statistics continue. The catalog
// watches camp.* and site.*, so it never sees a tombstone.
//
// A Catalog watches the bucket and, a few milliseconds after any change,
// builds a new Index and swaps it in with an atomic.Pointer: requests never
// lock. The Index orders campaigns by rank (tier, then eCPM) and holds a
// bitset per targeting value, so Index.Decide, a pure function of the index
// and a Request, allocates nothing and stops at the first words that hold
// its winner. Explain is its rule-by-rule twin for operators.
//
// Budgets are shared across edges through NATS: each edge writes its own
// spend and claims to pace.<edge> in the same bucket and reads everyone
// else's (see Pacer). Frequency caps use the segment builder's counts in the
// visitor record plus the edge's own recent impressions. A record the
// store's cache does not hold is waited for only briefly (WithRecordWait):
// past that the ad is decided failing closed, without capped campaigns or
// segment exclusions, while the read goes on for the visitor's next ad. The arithmetic of
// all this (flights, day parts, caps, headroom, the draws) is the pure
// package adserver/decision.
//
// Counting: an ad answer is one impression, charged once. Its viewable
// beacon (/imp) and its click count once each for the token's lifetime,
// however often they are replayed; a replay is answered as usual and counted
// in adsyn_ad_uncharged_total{reason="replay"}. With WithVisitorCeiling a
// visitor's charged impressions per minute on an edge are capped: past it
// the ad is still answered, but neither published, paced nor charged, nor
// are its beacon and click (reason="visitor_ceiling").
//
// Options: each constructor takes its own option type (StoreOption,
// CatalogOption, EdgeOption, HandlerOption); an option several of them read
// satisfies each of those types, and one a constructor would ignore does not
// compile.
//
// Privacy: without consent to personalize (P3) only contextual targeting is
// used (site, slot, categories, language, country, device); targeting a
// sensitive segment or category is refused (P1, the segments guard); no
// contact detail can reach a creative (ProfileCard has none, P2); click and
// impression tokens are HMAC-SHA256 signed and carry the visitor id
// encrypted (P8); /ad gives credentialed CORS only to pages on the site's
// domains, and uses no visitor id for any other origin; the opt-out cookie
// holds on /ad, /imp and /click; fmt=html is served in a CSP sandbox; the
// client address is used for geolocation and forgotten, and page URLs lose
// their query string.
//
// Lifetimes: nothing from a *fasthttp.RequestCtx outlives the handler. Ad
// builds its Request and event from views of the request's bytes; the
// Publisher encodes the event before Publish returns. A Decision points
// into its Index, which stays valid as long as it is referenced.
//
// Wiring (adsyn serve):
//
//	cat, _ := adserver.NewCatalog(ctx, conn.JS, adserver.WithLogger(log), adserver.WithMetrics(reg),
//		adserver.WithTargetCheck(taxonomyCheck))
//	defer cat.Close() // shares the final spend
//	edge, _ := adserver.NewEdge(ctx, cat, adserver.WithTokenKeys(key), adserver.WithPublisher(pub),
//		adserver.WithSegments(store), adserver.WithConsent(consentOf), adserver.WithCookies(&policy), adserver.WithGeo(geo), …)
//	router: if edge.Route(ctx) { return }  // or edge.Ad, edge.TagJS, edge.Click, edge.Imp, edge.DemoPage
//	h, _ := adserver.NewHandler(ctx, conn.JS, keys, adserver.WithCatalog(cat), adserver.WithSegments(store))
//	h.Routes(mux)
//	--demo: adserver.DemoSeed(ctx, conn.JS)
package adserver
