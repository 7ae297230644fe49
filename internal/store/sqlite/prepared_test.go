package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// preparedQueries lists the statements d has prepared, by query.
func (d *db) preparedQueries() map[string]*sql.Stmt {
	m := map[string]*sql.Stmt{}
	d.stmts.Range(func(q, st any) bool {
		m[q.(string)] = st.(*sql.Stmt)
		return true
	})
	return m
}

// Each query is prepared once and then reused: by reads, by writes outside
// a transaction, and by transactions, whose queries are prepared once the
// first transaction that ran them is over.
func TestStatementsArePreparedOnce(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, now := t.Context(), time.Now()
	token := func(hash string) store.RefreshToken {
		return store.RefreshToken{Hash: hash, FamilyID: "f", ClientID: "c", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	steps := []func() error{
		func() error { return s.CreateClient(ctx, store.Client{ID: "c"}) },
		func() error { _, err := s.GetClient(ctx, "c"); return err },
		func() error { return s.CreateRefreshToken(ctx, token("r0")) },
		func() error { _, err := s.RotateRefreshToken(ctx, "r0", token("r1"), now, 0); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	reads, writes := s.read.preparedQueries(), s.write.preparedQueries()
	// Insert client, insert token (the rotation inserts with the same
	// query), and the rotation's select and update.
	if len(reads) != 1 || len(writes) != 4 {
		t.Fatalf("prepared: got %d reads and %d writes, want 1 and 4", len(reads), len(writes))
	}
	if _, err := s.RotateRefreshToken(ctx, "r1", token("r2"), now, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClient(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	again := s.write.preparedQueries()
	for q, st := range writes {
		if again[q] != st {
			t.Errorf("write statement %q: prepared again, want it reused", q)
		}
	}
	if len(again) != len(writes) || len(s.read.preparedQueries()) != 1 {
		t.Errorf("prepared after a second rotation: got %d writes, want %d", len(again), len(writes))
	}
}
