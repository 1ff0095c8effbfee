package segments

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound is Store.Get for a visitor without a record.
	ErrNotFound = errors.New("segments: no record")
	// ErrInvalidVisitor is a visitor id that cannot be a key (see ValidVisitor).
	ErrInvalidVisitor = errors.New("segments: invalid visitor id")
	// ErrSensitive is a segment or signal in a sensitive category (P1).
	ErrSensitive = errors.New("segments: sensitive category")
	// ErrInvalidTaxonomy is a taxonomy that does not load for another reason.
	ErrInvalidTaxonomy = errors.New("segments: invalid taxonomy")
	// ErrBadRecord is a stored value that does not decode as a Record.
	ErrBadRecord = errors.New("segments: bad record")
	// ErrUnavailable is NATS not answering.
	ErrUnavailable = errors.New("segments: store unavailable")
)

// SegmentError says which segment of a taxonomy was refused and why. It wraps
// ErrSensitive or ErrInvalidTaxonomy.
type SegmentError struct {
	Segment string // the segment id, or "#<index>" when it has none
	Reason  string
	Err     error
}

func (e *SegmentError) Error() string {
	return fmt.Sprintf("segments: segment %q: %s", e.Segment, e.Reason)
}

func (e *SegmentError) Unwrap() error { return e.Err }
