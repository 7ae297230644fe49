package gateway

import "time"

// expiring is a cache entry that is good until a time.
type expiring interface{ expiry() time.Time }

// evict makes room in a full cache: it drops the entries that expired by
// now, or, if none has, an arbitrary one (Go's map order). The caller holds
// the cache's lock.
func evict[K comparable, V expiring](m map[K]V, now time.Time) {
	n := len(m)
	for k, e := range m {
		if !now.Before(e.expiry()) {
			delete(m, k)
		}
	}
	if len(m) < n {
		return
	}
	for k := range m {
		delete(m, k)
		return
	}
}
