package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// uniqueViolation is PostgreSQL's SQLSTATE for a violated unique constraint.
const uniqueViolation = "23505"

// Store is a store.Store in a PostgreSQL database. It is safe for concurrent
// use, and any number of processes may share the database.
//
// The update callbacks of the Update methods run inside a transaction that
// holds the record's row lock: they must be quick and must not call the
// Store.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the database that dsn names and migrates its schema to the
// latest version. The caller must Close the store.
//
// The dsn is a URL or a keyword/value string, as pgxpool.ParseConfig reads
// it, so it also sizes the pool (pool_max_conns; if unset, the greater of 4
// and the number of CPUs). The store's tables live in the first schema of the
// search_path, which the dsn may set:
// "postgres://gatehouse@db.internal/gatehouse?search_path=gatehouse".
func Open(ctx context.Context, dsn string) (*Store, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool's connections, waiting for those in use to be
// released. It always returns nil.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// dbtx is what *pgxpool.Pool and pgx.Tx have in common.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// inTx runs fn in a transaction and commits it if fn returns nil. Otherwise
// it rolls back and returns fn's error unchanged.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// dbError maps the driver's errors callers branch on to the store's
// sentinels: no rows to store.ErrNotFound, a violated unique constraint to
// store.ErrAlreadyExists. It returns other errors unchanged.
func dbError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
		return store.ErrAlreadyExists
	}
	return err
}

var _ store.Store = (*Store)(nil)
