package postgres_test

import (
	"context"
	"crypto/rand"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/postgres"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// testDSN returns the DSN of the test database, skipping t if there is none.
func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES is not set; set it to a PostgreSQL DSN " +
			"(e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to test the PostgreSQL store")
	}
	return dsn
}

func TestConformance(t *testing.T) {
	dsn := testDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, storetest.PostgresSchema(t, dsn))
	})
}

// admin runs sql on a connection of its own.
func admin(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context()) // also runs in cleanups, after t's context ends
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: got error %v, want nil", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: got error %v, want nil", sql, err)
	}
}

// open opens the store at dsn and closes it when t ends.
func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestReopenKeepsData(t *testing.T) {
	dsn := storetest.PostgresSchema(t, testDSN(t))
	s, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	if err := s.CreateUser(t.Context(), store.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatalf("CreateUser: got error %v, want nil", err)
	}
	s.Close()
	u, err := open(t, dsn).GetUser(t.Context(), "alice")
	if err != nil {
		t.Fatalf("GetUser after reopening: got error %v, want nil", err)
	}
	if u.ID != "u1" {
		t.Errorf("GetUser after reopening: got ID %q, want %q", u.ID, "u1")
	}
}

func TestConcurrentOpen(t *testing.T) {
	// Replicas starting at once must migrate the schema only once.
	dsn := storetest.PostgresSchema(t, testDSN(t))
	stores := make([]*postgres.Store, 8)
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), dsn) })
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

func TestOpenMissingSchema(t *testing.T) {
	dsn := storetest.WithSearchPath(t, testDSN(t), "gh_test_missing_"+strings.ToLower(rand.Text()))
	if s, err := postgres.Open(t.Context(), dsn); err == nil {
		s.Close()
		t.Errorf("Open with a search_path of no schema: got error %v, want an error", err)
	}
}

func TestMigrateFromVersion1(t *testing.T) {
	// A schema made by the first release keeps its clients, which read back
	// with the defaults of the columns added since.
	dsn := storetest.PostgresSchema(t, testDSN(t))
	v1, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatalf("ReadFile: got error %v, want nil", err)
	}
	admin(t, dsn, string(v1))
	admin(t, dsn, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO schema_migrations (version) VALUES (1);
		INSERT INTO clients VALUES ('backend', 'hash', false, '{client_credentials}', '{api}', '{}', '{}', 'jwt', false,
			'1970-01-01Z', '1970-01-01Z')`)
	got, err := open(t, dsn).GetClient(t.Context(), "backend")
	if err != nil {
		t.Fatalf("GetClient after migrating: got error %v, want nil", err)
	}
	want := store.Client{ID: "backend", SecretHash: "hash", Grants: []string{"client_credentials"}, Scopes: []string{"api"},
		AccessTokenFormat: store.FormatJWT, CreatedAt: time.Unix(0, 0).UTC(), UpdatedAt: time.Unix(0, 0).UTC()}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GetClient after migrating: got %+v, want %+v", got, want)
	}
}

// The store keeps pgx's default statement cache: every query is prepared
// once per connection, not parsed and planned on every call.
func TestPoolCachesStatements(t *testing.T) {
	s := open(t, storetest.PostgresSchema(t, testDSN(t)))
	mode, capacity := postgres.StatementCache(s)
	if mode != pgx.QueryExecModeCacheStatement || capacity < 64 {
		t.Fatalf("got mode %v with a cache of %d, want %v with room for every query of the store",
			mode, capacity, pgx.QueryExecModeCacheStatement)
	}
}
