package app_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/adsyn/adsyn/internal/api/apitest"
	"github.com/adsyn/adsyn/internal/keyring"
)

func callAPI(t *testing.T, method, url, key string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := apitest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func printedAdminKey(t *testing.T, printed string) string {
	t.Helper()
	for _, f := range strings.Fields(printed) {
		if strings.HasPrefix(f, "adsyn_") {
			return f
		}
	}
	t.Fatalf("no admin key printed: %q", printed)
	return ""
}

// noisyPNG is a real PNG whose pixels do not compress, so its bytes are
// unlike anything else on disk.
func noisyPNG(t *testing.T, seed byte) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 24, 24))
	x := uint32(seed)*2654435761 + 1
	for i := range img.Pix {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		img.Pix[i] = byte(x)
	}
	img.Set(0, 0, color.NRGBA{seed, seed, seed, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type person struct {
	name, email, phone, city, competence string
	photo, resume                        []byte
	id, key                              string
}

func (p *person) secrets() map[string][]byte {
	mid := len(p.photo) / 2
	return map[string][]byte{
		"name": []byte(p.name), "email": []byte(p.email), "phone": []byte(p.phone), "city": []byte(p.city),
		"competence": []byte(p.competence), "resume": p.resume[9:], "photo bytes": p.photo[mid : mid+48],
	}
}

// register makes the user, then writes several revisions (a rename, a city
// changed and back, visibility, consents), a photo and a resume.
func (p *person) register(t *testing.T, api, admin string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"name": p.name + " Jr", "email": p.email, "phone": p.phone, "city": "Nowhere",
		"competence": []string{p.competence}, "consents": map[string]bool{"syndication": true, "ad_profile": true},
	})
	code, resp := callAPI(t, "POST", api+"/v1/users", admin, body)
	if code != 201 {
		t.Fatalf("register: %d %s", code, resp)
	}
	var created struct {
		User struct{ ID string } `json:"user"`
		Key  string              `json:"key"`
	}
	if err := json.Unmarshal(resp, &created); err != nil {
		t.Fatal(err)
	}
	p.id, p.key = created.User.ID, created.Key
	for _, patch := range []string{
		`{"name":"` + p.name + `","city":"` + p.city + `"}`,
		`{"visibility":{"name":"public","city":"public","photo":"public","competence":"public"}}`,
		`{"city":"Elsewhere"}`,
		`{"city":"` + p.city + `","consents":{"personalized_ads":true}}`,
	} {
		if code, resp := callAPI(t, "PATCH", api+"/v1/users/"+p.id, p.key, []byte(patch)); code != 200 {
			t.Fatalf("patch %s: %d %s", patch, code, resp)
		}
	}
	if code, resp := callAPI(t, "PUT", api+"/v1/users/"+p.id+"/photo", p.key, p.photo); code != 200 {
		t.Fatalf("photo: %d %s", code, resp)
	}
	if code, resp := callAPI(t, "PUT", api+"/v1/users/"+p.id+"/resume", p.key, p.resume); code != 200 {
		t.Fatalf("resume: %d %s", code, resp)
	}
}

// readsBackWhole checks the account, photo and resume through the API.
func (p *person) readsBackWhole(t *testing.T, api string) {
	t.Helper()
	code, body := callAPI(t, "GET", api+"/v1/users/"+p.id, p.key, nil)
	if code != 200 {
		t.Fatalf("%s after restart: %d %s", p.name, code, body)
	}
	for _, want := range []string{p.name, p.email, p.phone, p.city, p.competence} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("%s after restart lacks %q: %s", p.name, want, body)
		}
	}
	if code, body := callAPI(t, "GET", api+"/v1/users/"+p.id+"/photo", p.key, nil); code != 200 || !bytes.Equal(body, p.photo) {
		t.Errorf("%s's photo after restart: %d, %d bytes", p.name, code, len(body))
	}
	if code, body := callAPI(t, "GET", api+"/v1/users/"+p.id+"/resume", p.key, nil); code != 200 || !bytes.Equal(body, p.resume) {
		t.Errorf("%s's resume after restart: %d %q", p.name, code, body)
	}
}

// disk is what an attacker holding a copy of the data directory recovers:
// every file's bytes, and the base64 runs in them decoded (JSON records
// carry sealed values in base64).
type disk struct {
	files map[string][]byte
	blobs [][]byte // every file, then every decoded base64 run
	ring  *keyring.Keyring
	ids   []string // key ids of the keyring file
}

var base64Run = regexp.MustCompile(`[A-Za-z0-9+/]{16,}={0,2}`)

func readDisk(t *testing.T, dir string) *disk {
	t.Helper()
	d := &disk{files: map[string][]byte{}}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		d.files[path] = b
		d.blobs = append(d.blobs, b)
		for _, run := range base64Run.FindAll(b, -1) {
			if dec, err := base64.StdEncoding.DecodeString(string(run)); err == nil {
				d.blobs = append(d.blobs, dec)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "profile.keys")
	if d.ring, err = keyring.Load(keys); err != nil {
		t.Fatalf("the keyring file of the data directory: %v", err)
	}
	text, _ := os.ReadFile(keys)
	for _, line := range strings.Split(string(text), "\n") {
		if id, _, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			d.ids = append(d.ids, strings.TrimSpace(id))
		}
	}
	if len(d.ids) == 0 {
		t.Fatal("no key id in the keyring file")
	}
	return d
}

// keyringSealed returns every value the keyring file opens with aad: a value
// sealed by the keyring starts with its key id's length and the id.
func (d *disk) keyringSealed(aad []byte, length int) [][]byte {
	var out [][]byte
	for _, id := range d.ids {
		prefix := append([]byte{byte(len(id))}, id...)
		for _, b := range d.blobs {
			for i := bytes.Index(b, prefix); i >= 0; {
				if end := i + len(prefix) + length; end <= len(b) {
					if plain, err := d.ring.Open(b[i:end], aad); err == nil {
						out = append(out, plain)
					}
				}
				next := bytes.Index(b[i+1:], prefix)
				if next < 0 {
					break
				}
				i += 1 + next
			}
		}
	}
	return out
}

// dataKeys returns the data keys of user id that unwrap with the keyring:
// 32 bytes sealed under a keyring key (id length, id, nonce, 48 bytes).
func (d *disk) dataKeys(id string) [][]byte {
	return d.keyringSealed([]byte("adsyn/user-keys/"+id), 12+32+16)
}

// openAll tries every blob (a whole base64-decoded value) as a value sealed
// under key with aad: a version byte, the nonce, ciphertext and tag.
func (d *disk) openAll(key []byte, aad string) [][]byte {
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	var out [][]byte
	for _, b := range d.blobs {
		if len(b) < 1+12+16 || b[0] != 1 {
			continue
		}
		if plain, err := gcm.Open(nil, b[1:13], b[13:], []byte(aad)); err == nil {
			out = append(out, plain)
		}
	}
	return out
}

// openRaw tries every offset of every file as the start of a value of n
// plaintext bytes sealed under key with aad: media chunks are stored raw.
func (d *disk) openRaw(key []byte, aad string, n int) [][]byte {
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	var out [][]byte
	for _, b := range d.files {
		for i := 0; i+1+12+n+16 <= len(b); i++ {
			if b[i] != 1 {
				continue
			}
			if plain, err := gcm.Open(nil, b[i+1:i+13], b[i+13:i+13+n+16], []byte(aad)); err == nil {
				out = append(out, plain)
			}
		}
	}
	return out
}

// TestErasureLeavesNothingOnDisk is the test of done of crypto-shredding:
// erase a user, restart on the same data directory, then read every file
// under it as an attacker with the keyring file would. Nothing of the erased
// user comes back, in clear or by decrypting with any key found there; a user
// who was not erased reads back whole.
func TestErasureLeavesNothingOnDisk(t *testing.T) {
	cfg := testConfig(t)
	a, out := start(t, cfg)
	admin := printedAdminKey(t, out.String())
	api := "http://" + a.APIAddr()

	gone := &person{name: "Zephyrine Quillfeather", email: "zephyrine.q@example.net", phone: "+33 6 98 76 54 32",
		city: "Quimperlé-sur-Mer", competence: "harpsichord-restoration", photo: noisyPNG(t, 7),
		resume: []byte("%PDF-1.4 curriculum of Zephyrine: oboe-reed-whittling since 1999")}
	kept := &person{name: "Bartholomew Keepsake", email: "bart.keeps@example.org", phone: "+44 20 7946 0958",
		city: "Tobermory", competence: "dry-stone-walling", photo: noisyPNG(t, 9),
		resume: []byte("%PDF-1.4 curriculum of Bartholomew: lighthouse-keeping")}
	gone.register(t, api, admin)
	kept.register(t, api, admin)

	// Before erasure the scanner finds both users' data keys and opens their
	// records: it would see the erased user's data if any key were left.
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := readDisk(t, cfg.DataDir)
	for _, p := range []*person{gone, kept} {
		keys := before.dataKeys(p.id)
		if len(keys) != 1 {
			t.Fatalf("%s: %d data keys found before erasure, want 1", p.name, len(keys))
		}
		if opened := before.openAll(keys[0], "adsyn/profiles/"+p.id+"/personal"); len(opened) == 0 || !bytes.Contains(opened[0], []byte(p.competence)) {
			t.Fatalf("%s: the scanner opens no record with the data key", p.name)
		}
		if opened := before.openRaw(keys[0], "adsyn/profiles/"+p.id+"/photo", len(p.photo)); len(opened) == 0 || !bytes.Equal(opened[0], p.photo) {
			t.Fatalf("%s: the scanner opens no photo with the data key", p.name)
		}
		for what, secret := range p.secrets() {
			for path, b := range before.files {
				if bytes.Contains(b, secret) {
					t.Errorf("%s's %s in clear in %s before erasure", p.name, what, path)
				}
			}
		}
	}

	a, _ = start(t, cfg)
	api = "http://" + a.APIAddr()
	if code, body := callAPI(t, "DELETE", api+"/v1/users/"+gone.id, gone.key, nil); code != 200 {
		t.Fatalf("erase: %d %s", code, body)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Restart: the kept user reads back whole, the erased one is gone.
	a, _ = start(t, cfg)
	api = "http://" + a.APIAddr()
	kept.readsBackWhole(t, api)
	if code, body := callAPI(t, "GET", api+"/v1/users/"+gone.id, admin, nil); code != 404 {
		t.Errorf("erased user after restart: %d %s", code, body)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	after := readDisk(t, cfg.DataDir)
	for what, secret := range gone.secrets() {
		for path, b := range after.files {
			if bytes.Contains(b, secret) {
				t.Errorf("erased user's %s in clear in %s", what, path)
			}
		}
		for _, b := range after.blobs {
			if bytes.Contains(b, secret) {
				t.Errorf("erased user's %s in a base64 value on disk", what)
			}
		}
	}
	if keys := after.dataKeys(gone.id); len(keys) != 0 {
		t.Errorf("the erased user's data key still unwraps from the data directory (%d copies)", len(keys))
	}
	keptKeys := after.dataKeys(kept.id)
	if len(keptKeys) != 1 {
		t.Fatalf("kept user: %d data keys on disk, want 1", len(keptKeys))
	}
	// Every key found on disk against every sealed value, for the erased
	// user's parts and media, and values sealed by the keyring alone.
	for _, key := range append(keptKeys, after.dataKeys(gone.id)...) {
		for _, part := range []string{"personal", "contact", "photo", "resume"} {
			if got := after.openAll(key, "adsyn/profiles/"+gone.id+"/"+part); len(got) != 0 {
				t.Errorf("the erased user's %s opens with a key on disk: %q", part, got[0])
			}
		}
		if got := after.openRaw(key, "adsyn/profiles/"+gone.id+"/photo", len(gone.photo)); len(got) != 0 {
			t.Error("the erased user's photo opens with a key on disk")
		}
		if got := after.openRaw(key, "adsyn/profiles/"+gone.id+"/resume", len(gone.resume)); len(got) != 0 {
			t.Error("the erased user's resume opens with a key on disk")
		}
	}
	for _, f := range []string{"email", "phone"} {
		for _, n := range []int{12 + 16 + len(gone.email), 12 + 16 + len(gone.phone)} {
			if got := after.keyringSealed([]byte("adsyn/profiles/"+gone.id+"/"+f), n); len(got) != 0 {
				t.Errorf("the erased user's %s opens with the keyring: %q", f, got[0])
			}
		}
	}
	if got := after.keyringSealed([]byte("adsyn/profiles/"+gone.id+"/resume"), 12+16+len(gone.resume)); len(got) != 0 {
		t.Errorf("the erased user's resume opens with the keyring")
	}
}

// TestLinkOnTheEdge: the serve app links the browser whose own uid cookie
// opens the token on the edge port.
func TestLinkOnTheEdge(t *testing.T) {
	a, out := start(t, testConfig(t))
	api := "http://" + a.APIAddr()
	body, _ := json.Marshal(map[string]any{"name": "Lin", "consents": map[string]bool{"link_visitor": true}})
	code, resp := callAPI(t, "POST", api+"/v1/users", printedAdminKey(t, out.String()), body)
	var created struct {
		User struct{ ID string } `json:"user"`
		Key  string              `json:"key"`
	}
	if err := json.Unmarshal(resp, &created); code != 201 || err != nil {
		t.Fatalf("register: %d %s", code, resp)
	}
	code, resp = callAPI(t, "POST", api+"/v1/users/"+created.User.ID+"/link", created.Key, nil)
	var link struct{ Path string }
	if err := json.Unmarshal(resp, &link); code != 201 || err != nil {
		t.Fatalf("link token: %d %s", code, resp)
	}
	const visitor = "AbCdEfGhIjKlMnOpQrStUv"
	req, _ := http.NewRequest("GET", "http://"+a.EdgeAddr()+link.Path, nil)
	req.AddCookie(&http.Cookie{Name: "uid", Value: visitor})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("edge /link: %d %s", res.StatusCode, b)
	}
	if code, resp := callAPI(t, "GET", api+"/v1/users/"+created.User.ID, created.Key, nil); code != 200 || !bytes.Contains(resp, []byte(`"linked_visitor":"`+visitor+`"`)) {
		t.Errorf("after linking: %d %s", code, resp)
	}
}
