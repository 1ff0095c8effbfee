package segments

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A record counts each event once only if a message is never applied again
// after its sequence has left the record's window of applied messages
// (Policy.MaxApplied). So a worker settles the outcome of each write, read
// and acknowledgement itself, retrying while NATS is away, rather than give
// messages back for a redelivery that could come an ack wait later.
//
// The confirmation of a batch's acknowledgements is awaited while the next
// batch is written, not before: one batch more goes to the records while
// they are in doubt. That adds nothing to what a redelivery must find in a
// record's window: a confirmation that arrives, even after retries, means
// no redelivery; one that never arrives (resendTimeout) let later batches
// be written before too. A high-water mark per record or partition (the
// highest sequence applied) would replace the window only if each record
// saw its messages in sequence order, and it does not: a message given back
// after a failed write comes again after later ones were applied, and
// builders sharing a partition's consumer interleave its messages.

// ack acknowledges a message whose records are written and waits until the
// server confirms it, retrying while NATS is away: an acknowledgement lost
// with a node is redelivered after the ack wait, when the records' window
// of applied messages may have moved on and its events would count twice.
func (w *worker) ack(m jetstream.Msg) {
	deadline := time.Now().Add(resendTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := m.DoubleAck(ctx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			return
		}
		if time.Now().After(deadline) {
			w.b.o.log.Warn("segments: acknowledgement not confirmed; the message will be redelivered", "partition", w.part, "err", err)
			return
		}
		select {
		case <-w.stopping:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A record write sent again carries its expected revision (and its message
// id, if it has one), and is stored at most once either way. Within the bucket's
// dedupe window (bus.SegmentsDedupeWindow) a cluster knows the id and
// answers with the first write's sequence. One server checks the expected
// revision before the id, and a cluster does once the window has passed:
// the first write moved the record on, so the resend is refused as a
// conflict, the record is read again, and its applied messages say the
// events are in. The id spares that read in a cluster; the revision is what
// keeps a write from being stored twice. So writes carry an id only to a
// replicated bucket: on one server it would cost the server a dedupe entry
// per write (about 110 bytes for the window, and a fifth of the builder's
// CPU per event in BenchmarkBuilderBacklog) and never be read.

// resendTimeout bounds the retries of one unanswered record write.
const resendTimeout = 20 * time.Second

// readRetry is read, retried while NATS is away for up to resendTimeout:
// messages given back for redelivery may have been applied to other
// visitors' records, and the later the redelivery, the likelier those
// records' window of applied messages has moved on.
func (w *worker) readRetry(visitor string) (*held, error) {
	deadline := time.Now().Add(resendTimeout)
	for {
		h, err := w.read(visitor)
		if err == nil || time.Now().After(deadline) {
			return h, err
		}
		select {
		case <-w.stopping:
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// resend publishes an unanswered record write again, retrying while NATS
// is away, for up to resendTimeout.
func (w *worker) resend(m *nats.Msg) (*jetstream.PubAck, error) {
	deadline := time.Now().Add(resendTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ack, err := w.b.js.PublishMsg(ctx, m)
		cancel()
		var apiErr *jetstream.APIError
		if err == nil || errors.As(err, &apiErr) || time.Now().After(deadline) {
			return ack, err
		}
		select {
		case <-w.stopping:
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
