package expiring_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/expiring"
)

func TestMakeRoom(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name     string
		entries  map[string]time.Duration // expiry relative to now, by key
		wantKept []string                 // must remain
		wantLen  int
	}{
		{"expired entries go", map[string]time.Duration{"old": -time.Second, "now": 0, "live": time.Minute}, []string{"live"}, 1},
		{"none expired: one goes", map[string]time.Duration{"a": time.Second, "b": time.Minute, "c": time.Hour}, nil, 2},
		{"all expired", map[string]time.Duration{"a": -time.Second, "b": -time.Minute}, nil, 0},
		{"empty", map[string]time.Duration{}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]time.Time{}
			for k, d := range tt.entries {
				m[k] = now.Add(d)
			}
			expiring.MakeRoom(m, now, func(v time.Time) time.Time { return v })
			if len(m) != tt.wantLen {
				t.Errorf("got %d entries left (%v), want %d", len(m), m, tt.wantLen)
			}
			for _, k := range tt.wantKept {
				if _, ok := m[k]; !ok {
					t.Errorf("got %q evicted, want it kept", k)
				}
			}
		})
	}
}

// A verified-token cache makes room before it adds an entry.
func ExampleMakeRoom() {
	type principal struct{ expiry time.Time }
	const size = 2
	now := time.Now()
	cache := map[string]principal{
		"t1": {expiry: now.Add(-time.Second)}, // expired
		"t2": {expiry: now.Add(time.Minute)},
	}
	if len(cache) >= size {
		expiring.MakeRoom(cache, now, func(p principal) time.Time { return p.expiry })
	}
	cache["t3"] = principal{expiry: now.Add(time.Minute)}
	_, t1 := cache["t1"]
	fmt.Println(len(cache), t1)
	// Output: 2 false
}
