package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// throttleWindow is the window of the suite's login throttling.
const throttleWindow = 15 * time.Minute

// lockAfter returns a lockFor function that locks for failures minutes from
// the third failure on, and appends each count it is passed to calls.
func lockAfter(calls *[]int) func(int) time.Duration {
	return func(failures int) time.Duration {
		*calls = append(*calls, failures)
		if failures < 3 {
			return 0
		}
		return time.Duration(failures) * time.Minute
	}
}

// fail records a failed login for key at at and reports an error unless it
// returns want, and GetThrottle then returns it too.
func fail(t *testing.T, s store.Store, key string, at time.Time, lockFor func(int) time.Duration, want store.Throttle) {
	t.Helper()
	got, err := s.RecordLoginFailure(t.Context(), key, at, throttleWindow, lockFor)
	must(t, "RecordLoginFailure", err)
	check(t, "RecordLoginFailure("+key+")", got, want)
	checkThrottle(t, s, want)
}

// checkThrottle reports an error unless GetThrottle(want.Key) returns want.
func checkThrottle(t *testing.T, s store.Store, want store.Throttle) {
	t.Helper()
	got, err := s.GetThrottle(t.Context(), want.Key)
	must(t, "GetThrottle", err)
	check(t, "GetThrottle("+want.Key+")", got, want)
}

var throttleCases = []testCase{
	{"None", func(t *testing.T, s store.Store) {
		checkThrottle(t, s, store.Throttle{Key: "user:alice"})
	}},
	{"Count", func(t *testing.T, s store.Store) {
		const key = "user:alice"
		var calls []int
		lock := lockAfter(&calls)
		fail(t, s, key, t0, lock, store.Throttle{Key: key, Failures: 1, LastFailure: t0})
		at := t0.Add(time.Minute)
		fail(t, s, key, at, lock, store.Throttle{Key: key, Failures: 2, LastFailure: at})
		at = at.Add(time.Minute)
		fail(t, s, key, at, lock, store.Throttle{Key: key, Failures: 3, LastFailure: at, LockedUntil: at.Add(3 * time.Minute)})
		// A failure exactly window after the last still counts.
		at = at.Add(throttleWindow)
		fail(t, s, key, at, lock, store.Throttle{Key: key, Failures: 4, LastFailure: at, LockedUntil: at.Add(4 * time.Minute)})
		// One older than window restarts the count; the lock is kept.
		locked := at.Add(4 * time.Minute)
		at = at.Add(throttleWindow + time.Millisecond)
		fail(t, s, key, at, lock, store.Throttle{Key: key, Failures: 1, LastFailure: at, LockedUntil: locked})
		check(t, "failures passed to lockFor", calls, []int{1, 2, 3, 4, 1})
	}},
	{"LockKept", func(t *testing.T, s store.Store) {
		// lockFor returning zero or less keeps the lock as it was.
		const key = "addr:192.0.2.7"
		lockFor := map[int]time.Duration{1: 10 * time.Minute, 2: -time.Minute, 3: 0}
		lock := func(failures int) time.Duration { return lockFor[failures] }
		locked := t0.Add(10 * time.Minute)
		for i := range 3 {
			at := t0.Add(time.Duration(i) * time.Second)
			fail(t, s, key, at, lock, store.Throttle{Key: key, Failures: i + 1, LastFailure: at, LockedUntil: locked})
		}
	}},
	{"TimesInOtherZones", func(t *testing.T, s store.Store) {
		// The state comes back as stored: in UTC.
		const key = "user:alice"
		at := t0.In(time.FixedZone("UTC+5", 5*60*60))
		lock := func(int) time.Duration { return time.Minute }
		fail(t, s, key, at, lock, store.Throttle{Key: key, Failures: 1, LastFailure: t0, LockedUntil: t0.Add(time.Minute)})
	}},
	{"KeysApart", func(t *testing.T, s store.Store) {
		var calls []int
		lock := lockAfter(&calls)
		fail(t, s, "user:alice", t0, lock, store.Throttle{Key: "user:alice", Failures: 1, LastFailure: t0})
		fail(t, s, "user:alice", t1, lock, store.Throttle{Key: "user:alice", Failures: 2, LastFailure: t1})
		fail(t, s, "addr:192.0.2.7", t1, lock, store.Throttle{Key: "addr:192.0.2.7", Failures: 1, LastFailure: t1})
		checkThrottle(t, s, store.Throttle{Key: "user:bob"})
	}},
	{"Reset", func(t *testing.T, s store.Store) {
		const key = "user:alice"
		var calls []int
		lock := lockAfter(&calls)
		for i := range 3 {
			_, err := s.RecordLoginFailure(t.Context(), key, t0.Add(time.Duration(i)*time.Second), throttleWindow, lock)
			must(t, "RecordLoginFailure", err)
		}
		fail(t, s, "user:bob", t0, lock, store.Throttle{Key: "user:bob", Failures: 1, LastFailure: t0})
		must(t, "ResetThrottle", s.ResetThrottle(t.Context(), key))
		checkThrottle(t, s, store.Throttle{Key: key})
		checkThrottle(t, s, store.Throttle{Key: "user:bob", Failures: 1, LastFailure: t0})
		// The lock is forgotten too.
		fail(t, s, key, t1, lock, store.Throttle{Key: key, Failures: 1, LastFailure: t1})
		must(t, "ResetThrottle of an unknown key", s.ResetThrottle(t.Context(), "user:nobody"))
	}},
}
