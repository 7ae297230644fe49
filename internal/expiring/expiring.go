// Package expiring holds the one eviction rule of Gatehouse's bounded
// in-memory caches: verified tokens (resource), exchanged tokens
// (outbound), Basic-credential tokens and phantom tokens (gateway). Each
// cache keeps its entries in a map under its own lock and calls MakeRoom
// when the map is full.
package expiring

import "time"

// MakeRoom makes room in a full cache m: it deletes the entries that have
// expired at now (expiry(v) not after now), or, if none has, one arbitrary
// entry (Go's map order). Every entry of these caches expires within
// minutes, so dropping an arbitrary live one only costs its next miss. The
// caller holds the cache's lock.
func MakeRoom[K comparable, V any](m map[K]V, now time.Time, expiry func(V) time.Time) {
	n := len(m)
	for k, v := range m {
		if !now.Before(expiry(v)) {
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
