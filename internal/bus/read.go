package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/event"
)

// ReadEvents calls fn for every event in ADSYN_EVENTS from stream sequence
// start (1 for all) up to the last message stored when it was called. The
// *Event is reused between calls. It returns the number of events read.
func ReadEvents(ctx context.Context, js jetstream.JetStream, start uint64, fn func(seq uint64, e *event.Event) error) (int, error) {
	s, err := js.Stream(ctx, StreamEvents)
	if err != nil {
		return 0, fmt.Errorf("bus: read events: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bus: read events: %w", err)
	}
	last := info.State.LastSeq
	if start < 1 {
		start = 1
	}
	if info.State.Msgs == 0 || last < start {
		return 0, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   start,
	})
	if err != nil {
		return 0, fmt.Errorf("bus: read events: %w", err)
	}
	total := 0
	for {
		batch, err := c.Fetch(1024, jetstream.FetchMaxWait(2e9))
		if err != nil {
			return total, fmt.Errorf("bus: read events: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return total, fmt.Errorf("bus: read events: %w", err)
			}
			seq := md.Sequence.Stream
			n, err := event.DecodeBatch(m.Data(), func(e *event.Event) error { return fn(seq, e) })
			total += n
			if err != nil {
				return total, err
			}
			if seq >= last {
				return total, nil
			}
		}
		if err := batch.Error(); err != nil {
			return total, fmt.Errorf("bus: read events: %w", err)
		}
		if got == 0 {
			return total, fmt.Errorf("bus: read events: stream ended before sequence %d", last)
		}
	}
}
