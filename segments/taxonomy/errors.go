package taxonomy

import (
	"errors"
	"fmt"
)

var (
	// ErrSensitive is a segment or signal in a sensitive category (P1).
	ErrSensitive = errors.New("segments: sensitive category")
	// ErrInvalidTaxonomy is a taxonomy that does not load for another reason.
	ErrInvalidTaxonomy = errors.New("segments: invalid taxonomy")
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
