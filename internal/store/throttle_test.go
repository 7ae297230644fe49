package store

import (
	"testing"
	"time"
)

func TestThrottleNext(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	lock := func(n int) time.Duration {
		if n >= 3 {
			return time.Minute
		}
		return 0
	}
	tests := []struct {
		name         string
		old          Throttle
		at           time.Time
		wantFailures int
		wantLocked   time.Time
	}{
		{"first failure", Throttle{}, now, 1, time.Time{}},
		{"within the window", Throttle{Failures: 1, LastFailure: now.Add(-time.Minute)}, now, 2, time.Time{}},
		{"third locks", Throttle{Failures: 2, LastFailure: now.Add(-time.Minute)}, now, 3, now.Add(time.Minute)},
		{"after the window restarts", Throttle{Failures: 7, LastFailure: now.Add(-2 * time.Hour)}, now, 1, time.Time{}},
		{"an old lock is kept when lockFor says 0", Throttle{Failures: 1, LastFailure: now, LockedUntil: now.Add(time.Hour)}, now, 2, now.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.old.Next(tt.at, time.Hour, lock)
			if got.Failures != tt.wantFailures || !got.LockedUntil.Equal(tt.wantLocked) || !got.LastFailure.Equal(tt.at) {
				t.Fatalf("got %+v, want %d failures, locked until %v", got, tt.wantFailures, tt.wantLocked)
			}
		})
	}
	if got := (Throttle{LastFailure: now}).Expiry(time.Hour); !got.Equal(now.Add(time.Hour)) {
		t.Fatalf("Expiry: got %v, want the end of the window", got)
	}
	if got := (Throttle{LastFailure: now, LockedUntil: now.Add(2 * time.Hour)}).Expiry(time.Hour); !got.Equal(now.Add(2 * time.Hour)) {
		t.Fatalf("Expiry: got %v, want the end of the lock", got)
	}
}
