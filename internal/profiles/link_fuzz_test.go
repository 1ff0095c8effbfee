package profiles

import (
	"testing"
	"time"
)

// FuzzLinkToken: any string read from a /link URL is refused without a
// panic unless it is a token this key signed, which then opens to what was
// sealed in it.
func FuzzLinkToken(f *testing.F) {
	k := deriveLinkKeys([]byte("fuzz secret, 32 bytes long......"))
	exp := time.Unix(1760000000, 0)
	good := k.seal([16]byte{1, 2, 3}, exp, "u_0123456789abcdef0123")
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add("")
	f.Add(".")
	f.Add("AQ.AQ")
	f.Fuzz(func(t *testing.T, token string) {
		nonce, e, id, err := k.open(token)
		if err != nil {
			return
		}
		if token != good || id != "u_0123456789abcdef0123" || !e.Equal(exp) || nonce[:6] != "010203" {
			t.Fatalf("%q opened to %s %s %s", token, nonce, e, id)
		}
	})
}
