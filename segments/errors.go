package segments

import "errors"

var (
	// ErrNotFound is Store.Get for a visitor without a record.
	ErrNotFound = errors.New("segments: no record")
	// ErrInvalidVisitor is a visitor id that cannot be a key (see ValidVisitor).
	ErrInvalidVisitor = errors.New("segments: invalid visitor id")
	// ErrBadRecord is a stored value that does not decode as a Record.
	ErrBadRecord = errors.New("segments: bad record")
	// ErrUnavailable is NATS not answering.
	ErrUnavailable = errors.New("segments: store unavailable")
)
