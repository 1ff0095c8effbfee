package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Stored is one message as a stream holds it; for a key-value bucket's
// stream (KVStream) every revision kept is one, a deletion one without data.
type Stored struct {
	Seq     uint64
	Subject string
	Data    []byte
	Deleted bool // a key-value delete or purge marker
}

// KVStream names the stream behind a key-value bucket.
func KVStream(bucket string) string { return "KV_" + bucket }

// KVKey returns the key of a key-value bucket's message subject.
func KVKey(bucket, subject string) string { return strings.TrimPrefix(subject, "$KV."+bucket+".") }

// Scan calls fn with every message stored in stream up to its last
// sequence when the scan starts, oldest first: how `adsyn audit` reads
// what is stored. A stream that does not exist is no error (nothing stored).
func Scan(ctx context.Context, js jetstream.JetStream, stream string, fn func(m Stored) error) (int, error) {
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("bus: scan %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bus: scan %s: %w", stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return 0, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, fmt.Errorf("bus: scan %s: %w", stream, err)
	}
	n := 0
	for {
		batch, err := c.Fetch(1024, jetstream.FetchMaxWait(2e9))
		if err != nil {
			return n, fmt.Errorf("bus: scan %s: %w", stream, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return n, fmt.Errorf("bus: scan %s: %w", stream, err)
			}
			op := m.Headers().Get("KV-Operation")
			if md.Sequence.Stream > last {
				return n, nil
			}
			n++
			if err := fn(Stored{Seq: md.Sequence.Stream, Subject: m.Subject(), Data: m.Data(), Deleted: op == "DEL" || op == "PURGE"}); err != nil {
				return n, err
			}
			if md.Sequence.Stream >= last {
				return n, nil
			}
		}
		if err := batch.Error(); err != nil {
			return n, fmt.Errorf("bus: scan %s: %w", stream, err)
		}
		if got == 0 {
			return n, nil // the rest expired while we read
		}
	}
}
