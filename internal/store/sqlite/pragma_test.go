package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
)

func TestConnectionSettings(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	defer s.Close()
	tests := []struct {
		conn   string
		db     *sql.DB
		pragma string
		want   string
	}{
		{"write", s.write.DB, "journal_mode", "wal"},
		{"write", s.write.DB, "foreign_keys", "1"},
		{"write", s.write.DB, "busy_timeout", "10000"},
		{"write", s.write.DB, "query_only", "0"},
		{"read", s.read.DB, "journal_mode", "wal"},
		{"read", s.read.DB, "foreign_keys", "1"},
		{"read", s.read.DB, "busy_timeout", "10000"},
		{"read", s.read.DB, "query_only", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.conn+"/"+tt.pragma, func(t *testing.T) {
			var got string
			if err := tt.db.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: got error %v, want nil", tt.pragma, err)
			}
			if got != tt.want {
				t.Errorf("PRAGMA %s: got %q, want %q", tt.pragma, got, tt.want)
			}
		})
	}
}
