package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func FuzzParseSignatures(f *testing.F) {
	f.Add("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	f.Add("v1a,abc v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,bm90")
	f.Add("")
	f.Add("v1")
	f.Add(",,, v1,")
	f.Add(strings.Repeat("v1,AAAA ", 20))
	f.Fuzz(func(t *testing.T, header string) {
		sigs, err := ParseSignatures(header)
		if err != nil {
			if !errors.Is(err, ErrHeaders) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if len(sigs) == 0 || len(sigs) > maxSignatures {
			t.Fatalf("%d signatures", len(sigs))
		}
		for _, s := range sigs {
			if len(s) != 32 {
				t.Fatalf("signature of %d bytes", len(s))
			}
		}
	})
}

// specVerify is a receiver written from the Standard Webhooks spec text
// (../shared/REFERENCES.md), independent of Sign and Verify: it signs
// id.timestamp.body with the timestamp exactly as the header carries it,
// and accepts when any space-separated "v1,<base64>" entry equals the
// expected base64 text.
func specVerify(key []byte, id, timestamp, header string, body []byte, now time.Time) bool {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || id == "" || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + timestamp + "."))
	m.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, entry := range strings.Split(header, " ") {
		if hmac.Equal([]byte(entry), []byte(want)) {
			return true
		}
	}
	return false
}

// The spec's published vector, checked by the independent verifier, so the
// fuzz oracle below is itself known good.
func TestSpecVerifierVector(t *testing.T) {
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	const sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	body := []byte(`{"test": 2432232314}`)
	now := time.Unix(1614265330, 0)
	if !specVerify(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", sig, body, now) {
		t.Fatal("the independent verifier rejects the spec's own vector")
	}
	if specVerify(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", sig, []byte(`{"test":2432232314}`), now) {
		t.Fatal("the independent verifier accepts a changed body")
	}
}

// FuzzVerify holds Verify and Sign to the independent verifier: Verify never
// accepts what a spec receiver would reject, and whatever Sign makes, a spec
// receiver accepts and Verify accepts too.
func FuzzVerify(f *testing.F) {
	key, _ := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{"test": 2432232314}`))
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1a,abc v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{"test": 2432232314}`))
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265331", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{"test": 2432232314}`))
	f.Add("", "", "", []byte{})
	f.Add("id", "-1", "v1,", []byte("x"))
	f.Add("id", "99999999999999999999999", "v1,AAAA", []byte("x"))
	now := time.Unix(1614265330, 0)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		err := Verify(key, h, body, now)
		if err != nil && !errors.Is(err, ErrHeaders) && !errors.Is(err, ErrTimestamp) && !errors.Is(err, ErrSignature) {
			t.Fatalf("unclassified error %v", err)
		}
		// Verify signs the parsed timestamp, the spec its text; they agree
		// when the text is the number's canonical form.
		sec, perr := strconv.ParseInt(ts, 10, 64)
		canonical := perr == nil && strconv.FormatInt(sec, 10) == ts
		if err == nil && canonical && !specVerify(key, h.Get(HeaderID), ts, h.Get(HeaderSignature), body, now) {
			t.Fatalf("Verify accepted what the spec rejects: id %q ts %q sig %q", id, ts, sig)
		}
		if !canonical {
			sec = now.Unix()
		}
		signed := Sign(key, id, sec, body)
		if !specVerify(key, id, strconv.FormatInt(sec, 10), signed, body, time.Unix(sec, 0)) && id != "" {
			t.Fatalf("the spec rejects Sign's %q for id %q", signed, id)
		}
		h.Set(HeaderTimestamp, strconv.FormatInt(sec, 10))
		h.Set(HeaderSignature, signed)
		if err := Verify(key, h, body, time.Unix(sec, 0)); err != nil && !errors.Is(err, ErrHeaders) {
			t.Fatalf("Verify rejects Sign's own signature: %v", err)
		}
	})
}

func FuzzParseSecret(f *testing.F) {
	f.Add("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	f.Add("whsec_")
	f.Add("whsec_====")
	f.Add("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParseSecret(s)
		if err == nil && (len(key) < 24 || len(key) > 64) {
			t.Fatalf("key of %d bytes", len(key))
		}
	})
}
