package adserver

import (
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/segments"
)

func TestSetupBench(t *testing.T) {
	srv := bustest.StartServer(t)
	ctx := testCtx(t)
	conn := srv.Connect(t)
	var progress bytes.Buffer
	b, err := SetupBench(ctx, conn, BenchOptions{Campaigns: 400, Visitors: 3000, Sites: 10, WriteRecords: true}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Catalog.Index().Len() != 400 || !strings.Contains(progress.String(), "index ready") {
		t.Fatalf("index %d campaigns; progress:\n%s", b.Catalog.Index().Len(), progress.String())
	}
	// The records are in adsyn_segments, readable by the real store.
	store, err := segments.NewKVStore(ctx, conn.JS)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rec, err := store.Get(ctx, "v2999")
	if err != nil || rec.Visitor != "v2999" || len(rec.Segments) == 0 {
		t.Fatalf("record v2999: %v %+v", err, rec)
	}
	var ctxs fasthttp.RequestCtx
	served := 0
	for i := range uint64(200) {
		var req fasthttp.Request
		req.SetRequestURIBytes(b.AppendURI(nil, i))
		req.Header.SetUserAgent(BenchUserAgent)
		ctxs.Init(&req, nil, nil)
		if !b.Edge.Route(&ctxs) {
			t.Fatalf("not routed: %s", req.RequestURI())
		}
		switch ctxs.Response.StatusCode() {
		case 200:
			served++
		case 204:
		default:
			t.Fatalf("%s: %d", req.RequestURI(), ctxs.Response.StatusCode())
		}
	}
	if served < 150 {
		t.Fatalf("only %d of 200 requests filled", served)
	}
}
