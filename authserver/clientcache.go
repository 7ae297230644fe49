package authserver

import (
	"context"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// clientCacheTTL is how long a client record read from the store is used
// without reading it again: the bound on how late a change made elsewhere
// — by another replica, or by the CLI on the store — takes effect here.
// Changes made through this server's own Admin take effect at once (see
// clientCache.invalidate). At a second, the cache saves all but one read per
// client and second on the hot paths (client authentication, and the
// client check of every introspected token).
const clientCacheTTL = time.Second

// clientCache keeps client records read from the store for clientCacheTTL.
// Unknown client IDs are never cached, so requests naming made-up clients
// cannot grow it: it holds at most one entry per registered client. It is
// safe for concurrent use.
//
// The records it returns are shared: callers must not modify their slices.
type clientCache struct {
	store store.Store
	now   func() time.Time

	mu sync.RWMutex
	// gen counts invalidations: a record read from the store before one
	// must not be cached after it.
	gen     uint64
	entries map[string]cachedClient
}

type cachedClient struct {
	client  store.Client
	expires time.Time
}

func newClientCache(st store.Store, now func() time.Time) *clientCache {
	return &clientCache{store: st, now: now, entries: map[string]cachedClient{}}
}

// get returns the client with that ID, from the cache if it was read less
// than clientCacheTTL ago, or else from the store (store.ErrNotFound if
// there is none).
func (c *clientCache) get(ctx context.Context, id string) (store.Client, error) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.entries[id]
	gen := c.gen
	c.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.client, nil
	}
	cl, err := c.store.GetClient(ctx, id)
	if err != nil {
		return store.Client{}, err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.entries[id] = cachedClient{client: cl, expires: now.Add(clientCacheTTL)}
	}
	c.mu.Unlock()
	return cl, nil
}

// reload reads the client with that ID from the store and caches it, as
// get does for a record that has expired.
func (c *clientCache) reload(ctx context.Context, id string) (store.Client, error) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
	return c.get(ctx, id)
}

// invalidate forgets every cached record, and keeps out those that reads
// under way read before it: the next get of any client reads the store.
func (c *clientCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}
