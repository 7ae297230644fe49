package gateway

import (
	"testing"
	"time"
)

func TestEvict(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	entry := func(d time.Duration) phantomEntry { return phantomEntry{until: now.Add(d)} }
	tests := []struct {
		name     string
		entries  map[string]phantomEntry
		wantKept []string // must remain
		wantLen  int
	}{
		{name: "expired_go", entries: map[string]phantomEntry{"old": entry(-time.Second), "now": entry(0), "live": entry(time.Second)},
			wantKept: []string{"live"}, wantLen: 1},
		{name: "none_expired_one_goes", entries: map[string]phantomEntry{"a": entry(time.Second), "b": entry(time.Minute), "c": entry(time.Hour)},
			wantLen: 2},
		{name: "all_expired", entries: map[string]phantomEntry{"a": entry(-time.Second), "b": entry(-time.Minute)}, wantLen: 0},
		{name: "empty", entries: map[string]phantomEntry{}, wantLen: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evict(tt.entries, now)
			if len(tt.entries) != tt.wantLen {
				t.Errorf("got %d entries left, want %d", len(tt.entries), tt.wantLen)
			}
			for _, k := range tt.wantKept {
				if _, ok := tt.entries[k]; !ok {
					t.Errorf("got %q evicted, want it kept", k)
				}
			}
		})
	}
}
