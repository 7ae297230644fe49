package store

import "time"

// Next returns the state that follows t after a failed login at now, as
// RecordLoginFailure documents: the count restarts when the last failure is
// older than window, and lockFor (if not nil) may extend the lock.
// Implementations call it inside their atomic update.
func (t Throttle) Next(now time.Time, window time.Duration, lockFor func(int) time.Duration) Throttle {
	if t.Failures <= 0 || now.Sub(t.LastFailure) > window {
		t.Failures = 0
	}
	t.Failures++
	t.LastFailure = now
	if lockFor != nil {
		if d := lockFor(t.Failures); d > 0 {
			t.LockedUntil = now.Add(d)
		}
	}
	return t
}

// Expiry returns when t stops mattering: once its failures are older than
// window the next one restarts the count, and once LockedUntil has passed it
// locks nothing. DeleteExpired may remove it after that.
func (t Throttle) Expiry(window time.Duration) time.Time {
	if end := t.LastFailure.Add(window); end.After(t.LockedUntil) {
		return end
	}
	return t.LockedUntil
}
