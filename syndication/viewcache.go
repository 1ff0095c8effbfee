package syndication

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/adsyn/adsyn/internal/profiles"
)

// views holds the encoded views of recent profile versions, so partners
// whose contracts give the same view share one encoding of a change
// instead of building, hashing and marshalling it each.
type views struct {
	mu sync.Mutex
	m  map[viewKey]*encodedView
}

// viewKey names a view: a version of a user's profile (versions are
// unique, so it names the profile) seen through a contract.
type viewKey struct {
	user    string
	version uint64
	fields  uint8 // which of viewFields the contract lists
}

// encodedView is a view as deliveries use it; it is shared, never changed.
type encodedView struct {
	empty  bool
	hash   string
	fields []profiles.Field
	data   []byte // the view's JSON
}

// viewFields are the fields Build reads a contract for.
var viewFields = [...]profiles.Field{profiles.FieldName, profiles.FieldPhoto, profiles.FieldCity,
	profiles.FieldCompetence, profiles.FieldPrice, profiles.FieldLanguage}

const viewsMax = 8192

// get returns the view of prof (user at version) for contract c, encoding
// it on first use.
func (vs *views) get(user string, version uint64, prof *profiles.Profile, c Contract, publicURL string) *encodedView {
	k := viewKey{user: user, version: version}
	for i, f := range viewFields {
		if slices.Contains(c.Fields, f) {
			k.fields |= 1 << i
		}
	}
	vs.mu.Lock()
	e, ok := vs.m[k]
	vs.mu.Unlock()
	if ok {
		return e
	}
	v := Build(prof, c, publicURL)
	e = &encodedView{empty: v.Empty()}
	if !e.empty {
		e.hash, e.fields = v.Hash(), v.Fields()
		e.data, _ = json.Marshal(v)
	}
	vs.mu.Lock()
	if vs.m == nil {
		vs.m = map[viewKey]*encodedView{}
	}
	if len(vs.m) >= viewsMax {
		for old := range vs.m { // evict an arbitrary entry
			delete(vs.m, old)
			break
		}
	}
	vs.m[k] = e
	vs.mu.Unlock()
	return e
}

// appendEnvelope appends the webhook body (envelope, as encoding/json
// writes it) around data, the event's JSON.
func appendEnvelope(dst []byte, typ string, ts time.Time, data []byte) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, typ...) // a constant: nothing to escape
	dst = append(dst, `","timestamp":"`...)
	dst = ts.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}
