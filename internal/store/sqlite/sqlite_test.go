package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	})
}

// open opens the store at path and closes it when t ends.
func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: got error %v, want nil", err)
		}
	})
	return s
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "gatehouse")
	path := filepath.Join(dir, "store.db")
	open(t, path)
	for _, tt := range []struct {
		path string
		want os.FileMode
	}{
		{dir, os.ModeDir | 0o700},
		{path, 0o600},
	} {
		fi, err := os.Stat(tt.path)
		if err != nil {
			t.Fatalf("Stat: got error %v, want nil", err)
		}
		if got := fi.Mode(); got != tt.want {
			t.Errorf("mode of %s: got %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	if err := s.CreateUser(t.Context(), store.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatalf("CreateUser: got error %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: got error %v, want nil", err)
	}
	u, err := open(t, path).GetUser(t.Context(), "alice")
	if err != nil {
		t.Fatalf("GetUser after reopening: got error %v, want nil", err)
	}
	if u.ID != "u1" {
		t.Errorf("GetUser after reopening: got ID %q, want %q", u.ID, "u1")
	}
}

func TestConcurrentOpen(t *testing.T) {
	// Several processes starting at once must migrate the file only once.
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	stores := make([]*sqlite.Store, 8)
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = sqlite.Open(t.Context(), path) })
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Errorf("Open #%d: got error %v, want nil", i, errs[i])
			continue
		}
		s.Close()
	}
}

func TestStoresSharingAFile(t *testing.T) {
	// Stores in several processes share the file through SQLite's locks:
	// rotating one token from all of them at once must still rotate it once.
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	stores := make([]*sqlite.Store, 5)
	for i := range stores {
		stores[i] = open(t, path)
	}
	now := time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)
	old := store.RefreshToken{Hash: "a", FamilyID: "fam", AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := stores[0].CreateRefreshToken(t.Context(), old); err != nil {
		t.Fatalf("CreateRefreshToken: got error %v, want nil", err)
	}
	next := old
	next.Hash = "b"
	rots := make([]store.Rotation, 50)
	errs := make([]error, len(rots))
	var wg sync.WaitGroup
	for i := range rots {
		wg.Go(func() {
			rots[i], errs[i] = stores[i%len(stores)].RotateRefreshToken(t.Context(), "a", next, now, 10*time.Second)
		})
	}
	wg.Wait()
	fresh := 0
	for i, rot := range rots {
		switch {
		case errs[i] != nil:
			t.Errorf("RotateRefreshToken #%d: got error %v, want nil", i, errs[i])
		case rot.Successor.Hash != "b":
			t.Errorf("RotateRefreshToken #%d: got successor %q, want %q", i, rot.Successor.Hash, "b")
		case !rot.Replayed:
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("rotations not replayed: got %d, want 1", fresh)
	}
}

func TestOpenEmptyPath(t *testing.T) {
	if _, err := sqlite.Open(t.Context(), ""); err == nil {
		t.Errorf("Open(\"\"): got error %v, want an error", err)
	}
}

func TestMigrateFromVersion1(t *testing.T) {
	// A file made by the first release keeps its clients, which read back
	// with the defaults of the columns added since.
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	v1, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatalf("ReadFile: got error %v, want nil", err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("sql.Open: got error %v, want nil", err)
	}
	for _, stmt := range []string{
		string(v1),
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`,
		`INSERT INTO schema_migrations VALUES (1, 0)`,
		`INSERT INTO clients VALUES ('backend', 'hash', 0, '["client_credentials"]', '["api"]', '[]', '[]', 'jwt', 0, 0, 0)`,
	} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("set up version 1: got error %v, want nil", err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: got error %v, want nil", err)
	}
	got, err := open(t, path).GetClient(t.Context(), "backend")
	if err != nil {
		t.Fatalf("GetClient after migrating: got error %v, want nil", err)
	}
	want := store.Client{ID: "backend", SecretHash: "hash", Grants: []string{"client_credentials"}, Scopes: []string{"api"},
		AccessTokenFormat: store.FormatJWT, CreatedAt: time.UnixMicro(0).UTC(), UpdatedAt: time.UnixMicro(0).UTC()}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GetClient after migrating: got %+v, want %+v", got, want)
	}
}
