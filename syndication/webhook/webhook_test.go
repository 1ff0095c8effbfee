package webhook

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSignatureVector(t *testing.T) {
	// The Standard Webhooks specification's published test vector.
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	h := http.Header{
		"Webhook-Id":        {"msg_p5jXN8AQM9LWM0D4loKWxJek"},
		"Webhook-Timestamp": {"1614265330"},
		"Webhook-Signature": {"v1a,ignored v1,bm90IGl0 " + want},
	}
	at := time.Unix(1614265330, 0)
	if err := Verify(key, h, []byte(`{"test": 2432232314}`), at); err != nil {
		t.Errorf("verify: %v", err)
	}
	if err := Verify(key, h, []byte(`{"test":2432232314}`), at); err == nil {
		t.Error("verified a changed body")
	}
	if err := Verify(key, h, []byte(`{"test": 2432232314}`), at.Add(6*time.Minute)); err != ErrTimestamp {
		t.Errorf("old timestamp: %v", err)
	}
}

func TestParseSecret(t *testing.T) {
	if _, err := ParseSecret(NewSecret()); err != nil {
		t.Errorf("own secret: %v", err)
	}
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!", "whsec_c2hvcnQ=", "whsec_" + strings.Repeat("QUFB", 30)} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		}
	}
}
