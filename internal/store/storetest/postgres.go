package storetest

import (
	"context"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PostgresSchema creates a schema of t's own on the PostgreSQL server at dsn,
// drops it when t ends, and returns dsn with its search_path set to it, so
// that tests running in parallel, from any package, never share tables.
func PostgresSchema(t testing.TB, dsn string) string {
	t.Helper()
	schema := "gh_test_" + strings.ToLower(rand.Text())
	exec := func(sql string) {
		ctx := context.WithoutCancel(t.Context()) // also runs in cleanups, after t's context ends
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect to PostgreSQL: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE SCHEMA " + schema)
	t.Cleanup(func() { exec("DROP SCHEMA " + schema + " CASCADE") })
	return WithSearchPath(t, dsn, schema)
}

// WithSearchPath returns dsn, a URL or a keyword/value string, with its
// search_path set to schema.
func WithSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse the PostgreSQL DSN: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
