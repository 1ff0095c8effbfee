package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrConflict says a compare-and-set kept losing to other writers.
var ErrConflict = errors.New("bus: concurrent updates")

// IsWrongLastSequence reports a write refused by its expected last sequence
// (a compare-and-set that lost): code 10071 on one server, 10164 on a
// replicated stream. kv.Update's ErrKeyRevisionMismatch covers both too.
func IsWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// casAttempts bounds the reads and writes of one Update: contention on a
// single key is rare, and a caller that keeps losing is told so.
const casAttempts = 5

// Update changes one key by compare-and-set: it reads the entry, modify
// returns the next value from it, and the write holds only if nobody wrote
// the key in between; otherwise it starts again from a fresh read. An
// absent or deleted key gives jetstream.ErrKeyNotFound; an error from modify
// ends it with nothing written; losing casAttempts times gives ErrConflict.
// It returns the revision written.
func Update(ctx context.Context, kv jetstream.KeyValue, key string, modify func(cur jetstream.KeyValueEntry) ([]byte, error)) (uint64, error) {
	for range casAttempts {
		cur, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return 0, fmt.Errorf("bus: update %s: %w", key, jetstream.ErrKeyNotFound)
		}
		if err != nil {
			return 0, fmt.Errorf("bus: update %s: %w", key, err)
		}
		next, err := modify(cur)
		if err != nil {
			return 0, err
		}
		rev, err := kv.Update(ctx, key, next, cur.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("bus: update %s: %w", key, err)
		}
		return rev, nil
	}
	return 0, fmt.Errorf("bus: update %s: %w", key, ErrConflict)
}
