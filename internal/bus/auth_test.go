package bus_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
)

func TestUnauthenticatedClientIsRefused(t *testing.T) {
	srv := bustest.StartServer(t)
	nc, err := nats.Connect(srv.URL(), nats.NoReconnect())
	if err == nil {
		nc.Close()
		t.Fatal("a client without credentials was let in")
	}
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("want an authorization error, got %v", err)
	}
	// A well-formed seed the server does not know is refused as well, at once.
	other := t.TempDir()
	if _, err := bus.EnsureUsers(other); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = bus.Connect(ctx, srv.URL(), "stranger", bus.WithCredentials(bus.Credentials{NKeyFile: filepath.Join(other, bus.NKeyFile)}))
	if !errors.Is(err, bus.ErrCredentials) {
		t.Fatalf("unknown nkey: want ErrCredentials, got %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("refused credentials were retried until the deadline")
	}
}

func TestUserFilesArePrivateAndStable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	u, err := bus.EnsureUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.Adsyn, "U") || !strings.HasPrefix(u.Reader, "U") || u.Adsyn == u.Reader {
		t.Fatalf("public keys %+v", u)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v %v", st.Mode().Perm(), err)
	}
	for _, f := range []string{bus.NKeyFile, bus.ReaderNKeyFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v %v", f, st.Mode().Perm(), err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if !strings.HasPrefix(string(b), "SU") {
			t.Errorf("%s holds %.2q…, want a user seed (SU…)", f, b)
		}
	}
	again, err := bus.EnsureUsers(dir)
	if err != nil || again != u {
		t.Fatalf("second start: %+v %v, want the same users %+v", again, err, u)
	}
	if err := os.Chmod(filepath.Join(dir, bus.ReaderNKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureUsers(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a seed readable by others: %v", err)
	}
}

// TestReaderReadsAndWritesNothing uses the reader as the nats CLI would:
// stream info, KV get and watch, an ordered consumer over the events. Every
// write is refused, and adsyn's own connection sees nothing changed.
func TestReaderReadsAndWritesNothing(t *testing.T) {
	srv := bustest.StartServer(t)
	own := srv.Connect(t)
	reader := srv.ConnectAs(t, bus.Credentials{NKeyFile: filepath.Join(srv.Dir, bus.ReaderNKeyFile)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	okv, err := own.JS.KeyValue(ctx, bus.BucketCampaigns)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := okv.Put(ctx, "site.s1", []byte(`{"id":"s1"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := own.JS.Publish(ctx, "adsyn.ev.pageview.0", []byte("event one")); err != nil {
		t.Fatal(err)
	}

	// Reads.
	if _, err := reader.JS.AccountInfo(ctx); err != nil {
		t.Fatalf("account info: %v", err)
	}
	rkv, err := reader.JS.KeyValue(ctx, bus.BucketCampaigns)
	if err != nil {
		t.Fatalf("open bucket: %v", err)
	}
	if e, err := rkv.Get(ctx, "site.s1"); err != nil || string(e.Value()) != `{"id":"s1"}` {
		t.Fatalf("kv get: %v", err)
	}
	w, err := rkv.WatchAll(ctx)
	if err != nil {
		t.Fatalf("kv watch: %v", err)
	}
	if e := <-w.Updates(); e == nil || e.Key() != "site.s1" {
		t.Fatalf("kv watch gave %v", e)
	}
	_ = w.Stop()
	s, err := reader.JS.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	m, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil || string(m.Data()) != "event one" {
		t.Fatalf("fetch: %v", err)
	}
	if _, err := s.GetMsg(ctx, 1); err != nil {
		t.Fatalf("get message by sequence: %v", err)
	}

	// Writes, each with a short deadline: a refused request may get no answer.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }
	wctx, c1 := short()
	if _, err := rkv.Put(wctx, "site.s1", []byte(`{"id":"evil"}`)); err == nil {
		t.Error("the reader put into a bucket")
	}
	c1()
	wctx, c2 := short()
	if err := reader.JS.DeleteStream(wctx, bus.StreamAudit); err == nil {
		t.Error("the reader deleted ADSYN_AUDIT")
	}
	c2()
	wctx, c3 := short()
	if _, err := reader.JS.Publish(wctx, "adsyn.ev.pageview.0", []byte("forged")); err == nil {
		t.Error("the reader published an event")
	}
	c3()
	wctx, c4 := short()
	if _, err := reader.JS.CreateKeyValue(wctx, jetstream.KeyValueConfig{Bucket: "reader_made"}); err == nil {
		t.Error("the reader created a bucket")
	}
	c4()
	wctx, c5 := short()
	if err := s.Purge(wctx); err == nil {
		t.Error("the reader purged the events")
	}
	c5()

	// adsyn's view: nothing changed.
	if e, err := okv.Get(ctx, "site.s1"); err != nil || string(e.Value()) != `{"id":"s1"}` {
		t.Errorf("site.s1 after the reader: %v", err)
	}
	if _, err := own.JS.Stream(ctx, bus.StreamAudit); err != nil {
		t.Errorf("ADSYN_AUDIT after the reader: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Errorf("events after the reader: %+v %v, want the one event", info.State, err)
	}
	if _, err := own.JS.KeyValue(ctx, "reader_made"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("bucket made by the reader: %v", err)
	}
	if !reader.Connected() {
		t.Error("refusals closed the reader's connection")
	}
}

// TestClusterCredentialsOverTLS connects as a cluster member would: a
// server that requires TLS and a user with a password, the CA given as a
// file.
func TestClusterCredentialsOverTLS(t *testing.T) {
	dir := t.TempDir()
	serverCert, caFile := testCA(t, dir)
	e, err := bus.StartEmbedded(t.TempDir(), "127.0.0.1:0",
		bus.WithTLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}),
		bus.WithPassword("edge", "s3cret-edge"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := bus.Connect(ctx, e.URL(), "tls test", bus.WithCredentials(bus.Credentials{User: "edge", Password: "s3cret-edge", TLSCA: caFile}))
	if err != nil {
		t.Fatalf("connect with TLS and password: %v", err)
	}
	defer c.Close()
	if _, err := c.JS.AccountInfo(ctx); err != nil {
		t.Fatalf("JetStream over TLS: %v", err)
	}
	if st := c.NC.TLSRequired(); !st {
		t.Error("the connection is not TLS")
	}

	for name, creds := range map[string]bus.Credentials{
		"wrong password": {User: "edge", Password: "guess", TLSCA: caFile},
		"no password":    {TLSCA: caFile},
		"unknown CA":     {User: "edge", Password: "s3cret-edge"},
	} {
		short, cancel := context.WithTimeout(ctx, 3*time.Second)
		c, err := bus.Connect(short, e.URL(), name, bus.WithCredentials(creds))
		cancel()
		if err == nil {
			c.Close()
			t.Errorf("%s: connected", name)
		}
	}
}

// testCA makes a CA and a server certificate for 127.0.0.1 signed by it; it
// writes the CA to a PEM file and returns the server's key pair and that file.
func testCA(t *testing.T, dir string) (tls.Certificate, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "adsyn test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}
