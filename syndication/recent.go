package syndication

import (
	"sync"

	"github.com/adsyn/adsyn/internal/profiles"
)

// recent holds the newest profile each worker saw on the change feed, so
// its lanes rarely read a profile back from NATS. Profiles in it are decoded
// without their contact fields.
type recent struct {
	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	rev uint64
	p   *profiles.Profile // nil: erased or deleted
}

const recentMax = 16384

func (c *recent) put(user string, rev uint64, p *profiles.Profile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.m[user]; ok && cur.rev >= rev {
		return
	}
	if len(c.m) >= recentMax {
		for k := range c.m { // evict an arbitrary entry
			delete(c.m, k)
			break
		}
	}
	c.m[user] = cached{rev: rev, p: p}
}

// get returns the cached profile if it is at least at version atLeast.
// A task without a version (a resync) always reads the store.
func (c *recent) get(user string, atLeast uint64) (cached, bool) {
	if atLeast == 0 {
		return cached{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[user]
	return e, ok && e.rev >= atLeast
}
