package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/adserver"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/segments"
)

// adUserAgent is a browser's: requests without one are bots and get no ad.
const adUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// adVendorID is the TCF vendor id the ad scenario's edge answers for; the
// TC strings of the mix name it (or leave it out).
const adVendorID = 1001

// adMix is the ad scenario's traffic: sizes, and the shares of its signals.
type adMix struct {
	campaigns, visitors, sites int
	seed                       uint64
	// Visitors [0, warm) are asked for with a Zipf-like popularity; their
	// records reach the edge's cache through its watch. Visitors [warm,
	// visitors) are asked for once each: their records are in the bucket,
	// and the edge never read them.
	warm              int
	tcGrant, tcRefuse string
}

// Shares of requests, in percent (they are stated in the result).
const (
	adColdPct     = 20 // a visitor whose record the edge has never read
	adWarmPct     = 20 // of the visitors, those whose records the edge caches (200,000 of the default 1,000,000 fit its default cache)
	adGPCPct      = 10 // Sec-GPC: 1, outside GDPR scope
	adTCGrantPct  = 40 // gdpr=1 with a TC string granting purposes 1-10 to adsyn
	adTCRefusePct = 10 // gdpr=1 with a TC string granting nothing to adsyn
	// The rest: outside GDPR scope, no signal.
)

func newAdMix(campaigns, visitors int) (*adMix, error) {
	m := &adMix{campaigns: campaigns, visitors: visitors, sites: 100, warm: visitors * adWarmPct / 100}
	created := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	grant := consent.TCString{Created: created, LastUpdated: created, CmpID: 7, CmpVersion: 1, ConsentLanguage: "EN",
		VendorListVersion: 100, TcfPolicyVersion: 5, IsServiceSpecific: true, PublisherCC: "DE",
		PurposesConsent: consent.BitsOf(1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
		VendorConsents:  consent.Vendors{Ranges: consent.RangesOf(adVendorID, 755)}}
	refuse := grant
	refuse.PurposesConsent = consent.BitsOf(1)
	refuse.VendorConsents = consent.Vendors{Ranges: consent.RangesOf(755)}
	var err error
	if m.tcGrant, err = consent.Encode(&grant); err != nil {
		return nil, err
	}
	if m.tcRefuse, err = consent.Encode(&refuse); err != nil {
		return nil, err
	}
	return m, nil
}

// request prepares the i-th request of the mix: a site and slot, a visitor,
// page categories and the consent signals.
func (m *adMix) request(i uint64, req *fasthttp.Request) {
	var buf [512]byte
	r := splitmix(i ^ m.seed)
	dst := append(buf[:0], "/ad?site=s"...)
	dst = strconv.AppendUint(dst, r%uint64(m.sites), 10)
	if r>>8&1 == 0 {
		dst = append(dst, "&slot=top"...)
	} else {
		dst = append(dst, "&slot=side"...)
	}
	dst = append(dst, "&u="...)
	dst = appendVisitor(dst, m.visitor(i, r))
	dst = append(dst, "&c="...)
	dst = append(dst, adCats[(r>>40)%uint64(len(adCats))]...)
	dst = append(dst, ',')
	dst = append(dst, adCats[(r>>48)%uint64(len(adCats))]...)
	dst = append(dst, "&fmt=json"...)
	switch p := (splitmix(r) >> 32) % 100; {
	case p < adGPCPct:
		req.Header.Set("Sec-GPC", "1")
	case p < adGPCPct+adTCGrantPct:
		dst = append(append(dst, "&gdpr=1&gdpr_consent="...), m.tcGrant...)
	case p < adGPCPct+adTCGrantPct+adTCRefusePct:
		dst = append(append(dst, "&gdpr=1&gdpr_consent="...), m.tcRefuse...)
	}
	req.SetRequestURIBytes(dst)
	req.Header.Set("User-Agent", adUserAgent)
	req.Header.Set("Accept-Language", "ru-RU,ru;q=0.9,en;q=0.8")
}

// visitor picks the visitor of request i from random bits r: a share of
// cold visitors, each asked for once (while requests are fewer than them),
// and the others with a Zipf-like (s=1) popularity, as real traffic has.
func (m *adMix) visitor(i, r uint64) uint64 {
	warm, cold := uint64(m.warm), uint64(m.visitors-m.warm)
	if cold > 0 && splitmix(r)%100 < adColdPct {
		return warm + i%cold
	}
	// Log-uniform rank: P(rank <= k) = ln(k)/ln(n), i.e. Zipf with s = 1.
	u := float64(r>>20&(1<<40-1)) / (1 << 40)
	return min(uint64(math.Exp(u*math.Log(float64(warm)))), warm) - 1
}

func appendVisitor(dst []byte, i uint64) []byte {
	dst = append(dst, 'v')
	return strconv.AppendUint(dst, i, 10)
}

// loadModel writes the model into adsyn_campaigns. Advertisers and sites
// go through adserver's store; campaigns and creatives, tens of thousands,
// are published asynchronously under the bucket's documented keys
// (camp.<id>, crea.<id>), as JSON like the store writes.
func (m *adMix) loadModel(ctx context.Context, conn *bus.Conn, progress io.Writer) (*adserver.Snapshot, error) {
	st, err := adserver.NewStore(ctx, conn.JS)
	if err != nil {
		return nil, err
	}
	snap := adSnapshot(m.campaigns, m.sites, m.seed)
	fmt.Fprintf(progress, "ad: seeding %d campaigns, %d creatives, %d sites\n", len(snap.Campaigns), len(snap.Creatives), len(snap.Sites))
	for _, a := range snap.Advertisers {
		if err := st.PutAdvertiser(ctx, a); err != nil {
			return nil, err
		}
	}
	for _, si := range snap.Sites {
		if err := st.PutSite(ctx, si); err != nil {
			return nil, err
		}
	}
	err = publishAll(ctx, conn.JS, func(yield func(string, []byte) bool) {
		for _, c := range snap.Campaigns {
			b, _ := json.Marshal(c)
			if !yield("camp."+c.ID, b) {
				return
			}
		}
		for _, cr := range snap.Creatives {
			b, _ := json.Marshal(cr)
			if !yield("crea."+cr.ID, b) {
				return
			}
		}
	}, bus.BucketCampaigns)
	return snap, err
}

// loadRecords writes the records of visitors [from, to) into adsyn_segments.
func (m *adMix) loadRecords(ctx context.Context, conn *bus.Conn, from, to int, progress io.Writer) error {
	fmt.Fprintf(progress, "ad: writing %d visitor records to %s\n", to-from, bus.BucketSegments)
	now := time.Now().UnixMilli()
	shapes := make([]segments.Record, 4096)
	for i := range shapes {
		shapes[i] = adRecord(splitmix(m.seed^uint64(i)+1), now)
	}
	return publishAll(ctx, conn.JS, func(yield func(string, []byte) bool) {
		var buf []byte
		for i := from; i < to; i++ {
			id := string(appendVisitor(nil, uint64(i)))
			r := shapes[splitmix(uint64(i))%uint64(len(shapes))]
			r.Visitor = id
			buf = r.AppendMsgpack(buf[:0])
			if !yield(id, append([]byte(nil), buf...)) {
				return
			}
			if i > from && (i-from)%200000 == 0 {
				fmt.Fprintf(progress, "ad: %d records\n", i)
			}
		}
	}, bus.BucketSegments)
}

// publishAll publishes key/value pairs to a KV bucket asynchronously: one
// put is one message on $KV.<bucket>.<key>.
func publishAll(ctx context.Context, js jetstream.JetStream, seq func(func(string, []byte) bool), bucket string) error {
	var err error
	pending := make([]jetstream.PubAckFuture, 0, 2048)
	wait := func() error {
		for _, f := range pending {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		pending = pending[:0]
		return nil
	}
	seq(func(k string, b []byte) bool {
		var f jetstream.PubAckFuture
		if f, err = js.PublishAsync("$KV."+bucket+"."+k, b); err != nil {
			return false
		}
		if pending = append(pending, f); len(pending) == cap(pending) {
			err = wait()
		}
		return err == nil
	})
	if err == nil {
		err = wait()
	}
	if err != nil {
		return fmt.Errorf("ad: seed %s: %w", bucket, err)
	}
	return nil
}

// waitCatalog waits until a catalog of its own has loaded every campaign of
// snap: the edge's own watch is then at the same point or close.
func waitCatalog(ctx context.Context, conn *bus.Conn, snap *adserver.Snapshot) error {
	cat, err := adserver.NewCatalog(ctx, conn.JS)
	if err != nil {
		return err
	}
	defer cat.Close()
	deadline := time.Now().Add(30 * time.Second)
	for cat.Index().Len() < len(snap.Campaigns) {
		if time.Now().After(deadline) {
			return fmt.Errorf("ad: %d of %d campaigns reached the index within 30s", cat.Index().Len(), len(snap.Campaigns))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
