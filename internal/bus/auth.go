package bus

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Files of the embedded server's users in the data directory: NKey user
// seeds, one per file, as `nats --nkey FILE` reads them. The server itself
// holds only their public keys.
const (
	NKeyFile       = "nats-adsyn.nk"  // adsyn's own user: every permission
	ReaderNKeyFile = "nats-reader.nk" // tools: reads streams and buckets, writes nothing
)

const maxSeedFile = 4 << 10

// Users are the public keys (U…) of the embedded server's two users.
type Users struct {
	Adsyn  string
	Reader string
}

// EnsureUsers makes the two user seed files in dir at first start (the
// directory 0700, each file 0600) and returns their public keys. Existing
// files are kept: every process and tool of the machine uses them.
func EnsureUsers(dir string) (Users, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Users{}, fmt.Errorf("bus: credentials dir: %w", err)
	}
	adsyn, err := ensureSeed(filepath.Join(dir, NKeyFile))
	if err != nil {
		return Users{}, err
	}
	reader, err := ensureSeed(filepath.Join(dir, ReaderNKeyFile))
	if err != nil {
		return Users{}, err
	}
	if adsyn == reader {
		return Users{}, fmt.Errorf("bus: %s and %s hold the same key", NKeyFile, ReaderNKeyFile)
	}
	return Users{Adsyn: adsyn, Reader: reader}, nil
}

// ensureSeed returns the public key of the user seed in path, making the
// file with a fresh seed when there is none.
func ensureSeed(path string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("bus: new nkey: %w", err)
	}
	seed, _ := kp.Seed()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return readSeed(path)
	case err != nil:
		return "", fmt.Errorf("bus: credentials: %w", err)
	}
	_, werr := f.Write(append(seed, '\n'))
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("bus: credentials %s: %w", path, err)
	}
	return kp.PublicKey()
}

// readSeed returns the public key of the user seed file at path.
func readSeed(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("bus: credentials: %w", err)
	}
	if st.Size() > maxSeedFile {
		return "", fmt.Errorf("bus: credentials %s: larger than %d bytes", path, maxSeedFile)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("bus: credentials %s: mode %v lets others read it (chmod 600)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("bus: credentials: %w", err)
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(b))
	if err != nil {
		return "", fmt.Errorf("bus: credentials %s: not an NKey seed: %w", path, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("bus: credentials %s: not a user seed (SU…)", path)
	}
	return pub, nil
}

// readerPermissions let a tool read every stream and bucket through the
// JetStream API (info, direct and stored gets, ephemeral consumers and their
// fetches, flow control of ordered consumers) and nothing else: no publish
// to a stream subject, no acknowledgement, no stream or consumer change.
func readerPermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"$JS.API.INFO",
			"$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", "$JS.API.STREAM.INFO.*",
			"$JS.API.STREAM.MSG.GET.*", "$JS.API.DIRECT.GET.>",
			"$JS.API.CONSUMER.NAMES.*", "$JS.API.CONSUMER.LIST.*", "$JS.API.CONSUMER.INFO.*.*",
			"$JS.API.CONSUMER.CREATE.>", "$JS.API.CONSUMER.MSG.NEXT.*.*",
			"$JS.FC.>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>", "adsyn.>"}},
	}
}

// Credentials say how a client proves itself to NATS and checks the server:
// at most one of an NKey seed file, a .creds file and a user with password,
// plus TLS files. The zero value connects without either.
type Credentials struct {
	NKeyFile  string // a user seed (SU…), as `nats --nkey`
	CredsFile string // a user JWT and seed, as `nats --creds`
	User      string
	Password  string
	TLSCert   string // client certificate, when the server verifies clients
	TLSKey    string
	TLSCA     string // CA of the server's certificate, else the system roots
	// TLS is a ready configuration (tests, embedding); the files above
	// add to it.
	TLS *tls.Config
}

// options turns c into nats.go options.
func (c Credentials) options() ([]nats.Option, error) {
	var opts []nats.Option
	n := 0
	if c.NKeyFile != "" {
		n++
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("bus: nkey %s: %w", c.NKeyFile, err)
		}
		opts = append(opts, o)
	}
	if c.CredsFile != "" {
		n++
		if _, err := os.Stat(c.CredsFile); err != nil {
			return nil, fmt.Errorf("bus: creds: %w", err)
		}
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.User != "" || c.Password != "" {
		n++
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if n > 1 {
		return nil, errors.New("bus: give one of an nkey, a creds file or a user and password")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, errors.New("bus: a TLS client certificate needs both its certificate and its key")
	}
	if c.TLS != nil {
		opts = append(opts, nats.Secure(c.TLS.Clone()))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	return opts, nil
}
