package bench

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/privacy"
	"github.com/adsyn/adsyn/internal/stats"
	"github.com/adsyn/adsyn/internal/stats/audience"
)

// statsOptions size `adsyn bench stats`.
type statsOptions struct {
	Events     int     // events to aggregate per round, in the mix of statsPublish (default 1,000,000)
	Campaigns  int     // default 1,000, three creatives each
	Sites      int     // default 100, two slots each
	Visitors   int     // default 100,000
	Hours      int     // events spread over this many past hours (default 3)
	ClickRate  float64 // share of clicks among the ad events (default 0.1)
	QueryDays  int     // span of the hourly query (default 30)
	Queries    int     // timed queries (default 200)
	Partitions int     // default event.DefaultPartitions
	Log        *slog.Logger

	seen []bool // visitors of the published pageviews and searches, by number
}

func (o *statsOptions) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Events, 1_000_000)
	def(&o.Campaigns, 1000)
	def(&o.Sites, 100)
	def(&o.Visitors, 100_000)
	def(&o.Hours, 3)
	def(&o.QueryDays, 30)
	def(&o.Queries, 200)
	def(&o.Partitions, event.DefaultPartitions)
	if o.ClickRate <= 0 || o.ClickRate >= 1 {
		o.ClickRate = 0.1
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if len(o.seen) != o.Visitors {
		o.seen = make([]bool, o.Visitors)
	}
}

func statsIDs(run string, n int, kind string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = run + kind + strconv.Itoa(i)
	}
	return out
}

// The mix of statsPublish: mostly pageviews, as a publisher's traffic is.
const (
	statsPageviews      = 0.78 // of all events
	statsSearches       = 0.04 // of all events; the rest are ad events
	statsConversionRate = 0.02 // of the ad events, beside ClickRate
	statsIdentified     = 0.7  // events with a visitor id (consented)
)

// statsRun returns a new id for the run's campaigns and sites, one the
// publisher's privacy scrubber keeps whole in every id made of it. The
// scrubber cuts a run of seven or more digits as a phone number
// (privacy.MinPhoneDigits) and drops an id naming a sensitive term: a hex
// run id such as b21337106 (one in 20) had campaign "b21337106c73"
// published as "bc73", and the count, reading the ids the bench made,
// found none of the run's records.
func statsRun(o *statsOptions) (string, error) {
	scrub, err := privacy.New(privacy.Options{}) // as statsPublish's publisher has it
	if err != nil {
		return "", err
	}
	var sc privacy.Scratch
	kept := func(site, camp, creative string) bool {
		e := event.Event{Site: site, Campaign: camp, Creative: creative}
		scrub.Scrub(&e, &sc)
		return e.Site == site && e.Campaign == camp && e.Creative == creative
	}
next:
	for range 100 {
		var rid [4]byte
		_, _ = crand.Read(rid[:])
		run := "b" + hex.EncodeToString(rid[:])
		for _, s := range statsIDs(run, o.Sites, "s") {
			if !kept(s, "", "") {
				continue next
			}
		}
		for _, c := range statsIDs(run, o.Campaigns, "c") {
			for j := range 3 {
				if !kept("", c, statsCreative(c, j)) {
					continue next
				}
			}
		}
		return run, nil
	}
	return "", errors.New("stats bench: no run id the privacy scrubber keeps whole")
}

// statsCreative is creative j of campaign c.
func statsCreative(c string, j int) string { return c + "-" + strconv.Itoa(j) }

// statsPublish publishes o.Events events of the mix and marks in o.seen the
// visitors of the pageviews and searches (the known set the sketches must
// count).
func statsPublish(ctx context.Context, conn *bus.Conn, run string, o *statsOptions) (uint64, error) {
	pub, err := bus.NewPublisher(conn.NC, bus.PublisherOptions{Partitions: o.Partitions, Log: o.Log})
	if err != nil {
		return 0, fmt.Errorf("stats bench: publisher: %w", err)
	}
	camps, sites := statsIDs(run, o.Campaigns, "c"), statsIDs(run, o.Sites, "s")
	creatives := make([][3]string, o.Campaigns)
	for i, c := range camps {
		for j := range 3 {
			creatives[i][j] = statsCreative(c, j)
		}
	}
	visitors := statsIDs("v", o.Visitors, "")
	langs := []string{"en", "ru", "de", "fr", "es", "it", "pl", "tr"}
	countries := []string{"RU", "DE", "US", "FR", "ES", "IT", "PL", "TR", "GB", "NL", "UA", "KZ", "BY", "AT", "CH", "BE", "SE", "NO", "FI", "CZ"}
	devices := []string{"desktop", "mobile", "tablet", "tv"}
	pages := statsIDs("https://pub.example/page/", 300, "")
	referrers := []string{"", "", "", "https://www.search.example/", "https://news.example/a", "https://social.example/", "https://mail.example/"}
	browsers := []string{"Chrome", "Safari", "Firefox", "Edge", "Yandex", "Samsung Internet"}
	oses := []string{"Windows", "Android", "iOS", "macOS", "Linux"}
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	var e event.Event
	for i := range o.Events {
		if i%4096 == 0 {
			if ctx.Err() != nil {
				break
			}
			for pub.Stats().Inflight > 200_000 {
				time.Sleep(time.Millisecond) // the generator outruns NATS: wait, do not drop
			}
		}
		e = event.Event{ID: event.NewID(), Site: sites[r.IntN(o.Sites)]}
		e.Lang, e.Country = langs[r.IntN(len(langs))], countries[r.IntN(len(countries))]
		e.Device = event.Device{Type: devices[r.IntN(len(devices))], OS: oses[r.IntN(len(oses))], Browser: browsers[r.IntN(len(browsers))]}
		e.TS = now.Add(-time.Duration(r.Int64N(int64(o.Hours) * int64(time.Hour)))).UnixMilli()
		v := r.IntN(o.Visitors)
		switch x := r.Float64(); {
		case x < statsPageviews: // most of the traffic: a publisher's pages
			e.Kind = event.KindPageview
			e.URL = pages[int(r.ExpFloat64()*30)%len(pages)] + "?utm_source=mail"
			e.Referrer = referrers[r.IntN(len(referrers))]
		case x < statsPageviews+statsSearches:
			e.Kind, e.Query = event.KindSearch, "plumber"
		default: // an ad event of a campaign
			e.Kind = event.KindImpression
			switch y := r.Float64(); {
			case y < o.ClickRate:
				e.Kind = event.KindClick
			case y < o.ClickRate+statsConversionRate:
				e.Kind = event.KindConversion
			}
			c := r.IntN(o.Campaigns)
			e.Campaign, e.Creative = camps[c], creatives[c][r.IntN(3)]
			e.Slot = "top"
			if r.IntN(2) == 1 {
				e.Slot = "side"
			}
			if e.Kind == event.KindImpression && r.IntN(2) == 0 {
				e.Value = 0.002
			}
		}
		if r.Float64() < statsIdentified { // the rest did not consent to an id
			e.Visitor = visitors[v]
			if e.Kind == event.KindPageview || e.Kind == event.KindSearch {
				o.seen[v] = true
			}
		}
		for !pub.Publish(&e) {
			return 0, errors.New("stats bench: the publisher dropped events")
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := pub.Stop(sctx); err != nil {
		return 0, fmt.Errorf("stats bench: publish: %w", err)
	}
	st := pub.Stats()
	if st.Dropped > 0 {
		return st.Acked, fmt.Errorf("stats bench: %d events dropped while publishing", st.Dropped)
	}
	return st.Acked, nil
}

// statsCount sums what the run's records count: the campaigns' ad events,
// and the sites' pageviews and searches (their ad events must equal the
// campaigns'). It also merges the sites' visitor sketches.
func statsCount(ctx context.Context, js jetstream.JetStream, run string, o *statsOptions) (int64, *audience.Visitors, error) {
	now := time.Now().Unix() / 3600
	from, to := now-int64(o.Hours)-1, now+2
	visitors := &audience.Visitors{}
	sum := func(s stats.Scope, ids []string) (ads, aud int64, err error) {
		var (
			mu    sync.Mutex
			first error
			wg    sync.WaitGroup
			next  = make(chan string)
		)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range next {
					recs, err := stats.ReadRange(ctx, js, s, id, from, to)
					mu.Lock()
					if err != nil && first == nil {
						first = err
					}
					for _, r := range recs {
						ads += r.Totals.Impressions + r.Totals.Clicks + r.Totals.Conversions
						if a := r.Audience; a != nil {
							aud += int64(a.Pageviews + a.Searches)
							if err := visitors.Merge(&a.Visitors); err != nil && first == nil {
								first = err
							}
						}
					}
					mu.Unlock()
				}
			}()
		}
		for _, id := range ids {
			next <- id
		}
		close(next)
		wg.Wait()
		return ads, aud, first
	}
	camps, _, err := sum(stats.ScopeCampaign, statsIDs(run, o.Campaigns, "c"))
	if err != nil {
		return 0, nil, err
	}
	sites, aud, err := sum(stats.ScopeSite, statsIDs(run, o.Sites, "s"))
	if err != nil {
		return 0, nil, err
	}
	if sites != camps {
		return camps, nil, fmt.Errorf("stats bench: campaigns count %d ad events, sites %d", camps, sites)
	}
	return camps + aud, visitors, nil
}

// statsRecord is a realistic hour of a busy campaign.
func statsRecord(r *rand.Rand) *stats.Record {
	rec := &stats.Record{Seq: make([]uint64, event.DefaultPartitions)}
	add := func(d stats.Dim, vals []string) {
		rec.Dims[d] = map[string]stats.Counters{}
		left := rec.Totals
		for i, v := range vals {
			c := stats.Counters{Impressions: left.Impressions / 2, Clicks: left.Clicks / 2, SpendMicros: left.SpendMicros / 2}
			if i == len(vals)-1 {
				c = left
			}
			left.Impressions -= c.Impressions
			left.Clicks -= c.Clicks
			left.SpendMicros -= c.SpendMicros
			rec.Dims[d][v] = c
		}
	}
	rec.Totals = stats.Counters{Impressions: 1000 + r.Int64N(9000), Viewable: 500, Conversions: 3}
	rec.Totals.Clicks = rec.Totals.Impressions / 20
	rec.Totals.SpendMicros = rec.Totals.Impressions * 2000
	for i := range rec.Seq {
		rec.Seq[i] = r.Uint64N(1 << 30)
	}
	add(stats.DimCreative, []string{"cr-1", "cr-2", "cr-3"})
	add(stats.DimSite, statsIDs("site", 50, ""))
	add(stats.DimSlot, []string{"top", "side"})
	add(stats.DimLanguage, []string{"en", "ru", "de", "fr", "es", "it", "pl", "tr"})
	add(stats.DimCountry, statsIDs("C", 20, ""))
	add(stats.DimDevice, []string{"desktop", "mobile", "tablet", "tv"})
	return rec
}

// statsSiteRecord is a realistic hour of a busy site: its ad counters,
// and an audience at its breakdowns' limits with visitors of their own
// (numbered from firstVisitor), as the sketch keeps them.
func statsSiteRecord(r *rand.Rand, firstVisitor, visitors int) *stats.Record {
	rec := statsRecord(r)
	rec.Dims[stats.DimCampaign], rec.Dims[stats.DimCreative] = rec.Dims[stats.DimCreative], nil
	rec.Dims[stats.DimSite] = nil
	h := &audience.Hour{Pageviews: uint64(5000 + r.IntN(5000)), Searches: uint64(r.IntN(300)), Events: uint64(r.IntN(200))}
	for d := range audience.NumDimensions {
		bd := &h.Breakdowns[d]
		left := h.Pageviews
		if d == audience.EventName {
			left = h.Events
		}
		for i := range audience.Limits[d] {
			n := left / 4
			bd.Add(d.String()+"-"+strconv.Itoa(i), n, audience.Limits[d])
			left -= n
		}
		bd.Other = left
	}
	for v := range visitors {
		h.Visitors.Add("v" + strconv.Itoa(firstVisitor+v))
	}
	rec.Audience = h
	return rec
}

// statsQueryResult is what timing the stats API found: a site's hourly
// query with a page breakdown (the figures the issue bounds), and a
// campaign's hourly query.
type statsQueryResult struct {
	Hours, Records, Queries, BodyBytes int
	P50, P99, Max                      float64 // ms, the site's query with breakdown=page
	First                              float64 // ms, the site's first query (nothing cached)
	CampP50, CampP99, CampMax          float64 // ms, the campaign's query
	CampBodyBytes                      int
}

// statsQuery writes QueryDays of busy hourly records of one campaign and
// one site, and times the stats API answering a 30-day hourly query of each
// (the site's with breakdown=page), one query at a time, alternately: from
// the request to the answer's last byte (the first answers are checked;
// the timed ones are not parsed). Before each timed pair the current hour's
// records are written again, as the aggregator's flushes do.
func statsQuery(ctx context.Context, conn *bus.Conn, run string, o *statsOptions, progress io.Writer) (res statsQueryResult, err error) {
	kv, err := conn.JS.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		return res, err
	}
	id := run + "q"
	hours := o.QueryDays * 24
	now := time.Now().Unix() / 3600
	r := rand.New(rand.NewPCG(3, 4))
	var want stats.Counters
	var wantPageviews uint64
	type kvRec struct {
		key string
		val []byte
	}
	recs := make([]kvRec, 0, 2*hours)
	for i := range hours {
		at := time.Unix((now-int64(hours)+1+int64(i))*3600, 0)
		rec := statsRecord(r)
		addCounters(&want, &rec.Totals)
		recs = append(recs, kvRec{stats.Key(stats.ScopeCampaign, id, at), rec.AppendMsgpack(nil)})
		site := statsSiteRecord(r, i*1000, 2000) // half of an hour's visitors came the hour before
		wantPageviews += site.Audience.Pageviews
		recs = append(recs, kvRec{stats.Key(stats.ScopeSite, id, at), site.AppendMsgpack(nil)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(recs))
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(recs); i += 16 {
				if _, err := kv.Put(ctx, recs[i].key, recs[i].val); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return res, fmt.Errorf("stats bench: write query records: %w", err)
	}
	res.Records = len(recs)

	keys, err := auth.NewKeys(ctx, conn.JS, nil)
	if err != nil {
		return res, err
	}
	secret, p, err := keys.Create(ctx, auth.Admin, "", "stats bench "+run)
	if err != nil {
		return res, err
	}
	defer func() { _ = keys.Revoke(context.WithoutCancel(ctx), p.KeyID) }()
	h, err := stats.NewHandler(ctx, conn.JS, keys, stats.WithLogger(o.Log))
	if err != nil {
		return res, err
	}
	mux := http.NewServeMux()
	h.Routes(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	to := time.Unix((now+1)*3600, 0).UTC()
	from := to.Add(-time.Duration(hours) * time.Hour)
	span := fmt.Sprintf("by=hour&from=%s&to=%s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	campURL := fmt.Sprintf("http://%s/v1/campaigns/%s/stats?%s", ln.Addr(), id, span)
	siteURL := fmt.Sprintf("http://%s/v1/sites/%s/stats?%s&breakdown=page", ln.Addr(), id, span)
	client := &http.Client{Timeout: 30 * time.Second}
	// fetch asks once and reads the whole answer: what is timed.
	fetch := func(url string) ([]byte, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("stats bench: query: %d %s", resp.StatusCode, body)
		}
		return body, err
	}
	get := func(url string) (stats.Report, int, error) {
		body, err := fetch(url)
		if err != nil {
			return stats.Report{}, 0, err
		}
		var rep stats.Report
		err = json.Unmarshal(body, &rep)
		return rep, len(body), err
	}
	// The first query of each reads and decodes every record: the API's
	// cache holds none of them yet.
	t0 := time.Now()
	if _, err := fetch(siteURL); err != nil {
		return res, err
	}
	res.First = float64(time.Since(t0).Microseconds()) / 1000
	rep, n, err := get(campURL)
	if err != nil {
		return res, err
	}
	rep.Totals.Reach = nil // the bench's impressions carry no visitor
	if rep.Totals != stats.MetricsOf(want) || len(rep.Series) != hours {
		return res, fmt.Errorf("stats bench: query returned %+v over %d points, want %+v over %d", rep.Totals, len(rep.Series), stats.MetricsOf(want), hours)
	}
	res.CampBodyBytes = n
	if rep, n, err = get(siteURL); err != nil {
		return res, err
	}
	var pages uint64
	for _, v := range rep.Values {
		if v.Audience != nil {
			pages += v.Pageviews
		}
	}
	if rep.Totals.Audience == nil || rep.Totals.Pageviews != wantPageviews || pages != wantPageviews || rep.Breakdown != "page" {
		return res, fmt.Errorf("stats bench: the site's query counts %d pageviews, %d by page; want %d", rep.Totals.Pageviews, pages, wantPageviews)
	}
	res.Hours, res.BodyBytes = hours, n
	if progress != nil {
		fmt.Fprintf(progress, "stats: timing %d queries of %d hourly site records with breakdown=page, and as many of a campaign's\n", o.Queries, hours)
	}
	site := make([]float64, 0, o.Queries)
	camp := make([]float64, 0, o.Queries)
	current := recs[len(recs)-2:] // the current hour's campaign and site records
	for range o.Queries {
		// A flush rewrites the current hour before every query, so each
		// one reads and decodes a changed record, and sums its day again.
		for _, r := range current {
			if _, err := kv.Put(ctx, r.key, r.val); err != nil {
				return res, fmt.Errorf("stats bench: rewrite the current hour: %w", err)
			}
		}
		for _, q := range []struct {
			url string
			lat *[]float64
		}{{siteURL, &site}, {campURL, &camp}} {
			t := time.Now()
			if _, err := fetch(q.url); err != nil {
				return res, err
			}
			*q.lat = append(*q.lat, float64(time.Since(t).Microseconds())/1000)
		}
	}
	res.Queries = len(site)
	res.P50, res.P99, res.Max = quantiles(site)
	res.CampP50, res.CampP99, res.CampMax = quantiles(camp)
	return res, nil
}

// quantiles returns the p50, p99 and slowest of lat (ms).
func quantiles(lat []float64) (p50, p99, slowest float64) {
	slices.Sort(lat)
	q := func(f float64) float64 { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	return q(0.5), q(0.99), lat[len(lat)-1]
}

func addCounters(c, d *stats.Counters) {
	c.Impressions += d.Impressions
	c.Viewable += d.Viewable
	c.Clicks += d.Clicks
	c.Conversions += d.Conversions
	c.Calls += d.Calls
	c.SpendMicros += d.SpendMicros
}
