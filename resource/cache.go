package resource

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/expiring"
)

// tokenCache maps the SHA-256 of a verified token to its principal until the
// token expires, so each token's signature is checked once per process. It
// holds at most size entries; when full it drops expired entries, and if none
// are, an arbitrary one (Go's map order).
type tokenCache struct {
	mu      sync.RWMutex
	size    int
	entries map[[sha256.Size]byte]*Principal
}

func newTokenCache(size int) *tokenCache {
	return &tokenCache{size: size, entries: make(map[[sha256.Size]byte]*Principal, min(size, 1024))}
}

func (c *tokenCache) get(key [sha256.Size]byte, now time.Time) *Principal {
	c.mu.RLock()
	p := c.entries[key]
	c.mu.RUnlock()
	if p == nil || !now.Before(p.Expiry) {
		return nil
	}
	return p
}

func (c *tokenCache) put(key [sha256.Size]byte, p *Principal, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size {
		expiring.MakeRoom(c.entries, now, func(p *Principal) time.Time { return p.Expiry })
	}
	c.entries[key] = p
}
