package event

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/adsyn/adsyn/internal/consent"
)

// Kind is what happened. Its name is a token of the event's subject.
type Kind uint8

const (
	KindUnknown Kind = iota
	KindPageview
	KindSearch
	KindImpression
	KindViewable
	KindClick
	KindConversion
	KindError
	KindCall
	KindCustom
	numKinds
)

var kindNames = [numKinds]string{
	KindUnknown:    "unknown",
	KindPageview:   "pageview",
	KindSearch:     "search",
	KindImpression: "impression",
	KindViewable:   "viewable",
	KindClick:      "click",
	KindConversion: "conversion",
	KindError:      "error",
	KindCall:       "call",
	KindCustom:     "custom",
}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// Kinds lists every valid kind, in order.
func Kinds() []Kind {
	out := make([]Kind, 0, numKinds-1)
	for k := KindPageview; k < numKinds; k++ {
		out = append(out, k)
	}
	return out
}

// ParseKind returns the kind named s, or KindUnknown.
func ParseKind(s []byte) Kind {
	for k := KindPageview; k < numKinds; k++ {
		if string(s) == kindNames[k] {
			return k
		}
	}
	return KindUnknown
}

// ID is an event's unique id; its hex form is the Nats-Msg-Id.
type ID [16]byte

// NewID returns a random id.
func NewID() ID {
	var id ID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
	return id
}

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// AppendHex appends the hex form of id to dst.
func (id ID) AppendHex(dst []byte) []byte { return hex.AppendEncode(dst, id[:]) }

// Device is what the request says of the visitor's device.
type Device struct {
	Type      string `msgpack:"t,omitempty" json:"type,omitempty"` // desktop, mobile, tablet, tv, bot, unknown
	OS        string `msgpack:"o,omitempty" json:"os,omitempty"`
	OSVersion string `msgpack:"ov,omitempty" json:"os_version,omitempty"`
	Model     string `msgpack:"m,omitempty" json:"model,omitempty"`
	Browser   string `msgpack:"b,omitempty" json:"browser,omitempty"` // the family only (device.Browser*)
}

// Event is one captured fact. Field tags are the wire contract; keep them short
// and never reuse one.
type Event struct {
	ID         ID          `msgpack:"id"`
	TS         int64       `msgpack:"ts"` // unix milliseconds
	Kind       Kind        `msgpack:"k"`
	Visitor    string      `msgpack:"v,omitempty"`  // only with consent to store on device
	User       string      `msgpack:"uu,omitempty"` // only with consent to linking (P4)
	Site       string      `msgpack:"s,omitempty"`
	Slot       string      `msgpack:"sl,omitempty"`
	Campaign   string      `msgpack:"ca,omitempty"`
	Creative   string      `msgpack:"cr,omitempty"`
	URL        string      `msgpack:"u,omitempty"`
	Referrer   string      `msgpack:"r,omitempty"`
	Query      string      `msgpack:"q,omitempty"`
	Categories []string    `msgpack:"c,omitempty"`
	Lang       string      `msgpack:"l,omitempty"`
	Country    string      `msgpack:"co,omitempty"`
	Device     Device      `msgpack:"d,omitempty"`
	IP         string      `msgpack:"ip,omitempty"` // truncated at capture (P6)
	Consent    consent.Set `msgpack:"cs"`
	Value      float64     `msgpack:"val,omitempty"` // conversion value, call duration in seconds
	Name       string      `msgpack:"n,omitempty"`   // custom event name, call type
	Area       string      `msgpack:"ar,omitempty"`  // a caller's country and area code only, e.g. "+7 495"
	// NewVisitor says the visitor id was issued by this very request: the
	// browser has not sent it back yet, and may never (third-party cookies
	// blocked), so no visitor record is made from it.
	NewVisitor bool `msgpack:"nv,omitempty"`
}

// Reset clears e for reuse, keeping the Categories capacity.
func (e *Event) Reset() {
	cats := e.Categories[:0]
	*e = Event{Categories: cats}
}

// DefaultPartitions is N in partition = xxhash64(visitor) mod N.
const DefaultPartitions = 16

// PartitionKey is what an event is partitioned by: the visitor id when there
// is one, else the event id, so events without a visitor still spread evenly.
func (e *Event) PartitionKey() uint64 {
	if e.Visitor != "" {
		return xxhash.Sum64String(e.Visitor)
	}
	return xxhash.Sum64(e.ID[:])
}

// Partition returns the event's partition among n.
func (e *Event) Partition(n int) int {
	if n <= 1 {
		return 0
	}
	return int(e.PartitionKey() % uint64(n))
}

// SubjectPrefix is the root of every event subject.
const SubjectPrefix = "adsyn.ev."

// AppendSubject appends adsyn.ev.<kind>.<partition> to dst.
func AppendSubject(dst []byte, k Kind, partition int) []byte {
	dst = append(dst, SubjectPrefix...)
	dst = append(dst, k.String()...)
	dst = append(dst, '.')
	return strconv.AppendInt(dst, int64(partition), 10)
}

// Subject returns adsyn.ev.<kind>.<partition>.
func Subject(k Kind, partition int) string {
	return string(AppendSubject(nil, k, partition))
}

// SubjectFilter returns the subject filter of one partition, all kinds.
func SubjectFilter(partition int) string {
	return SubjectPrefix + "*." + strconv.Itoa(partition)
}

// HeaderCount names the header that carries the number of events in a message.
const HeaderCount = "Adsyn-Events"

// Limits on decoded input: a message never holds more than this.
const (
	MaxBatch     = 4096
	MaxEventSize = 16 << 10
)

var (
	ErrTooMany   = errors.New("event: too many events in message")
	ErrTruncated = errors.New("event: truncated message")
)
