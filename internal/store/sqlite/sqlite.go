package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// busyTimeout is how long, in milliseconds, a connection waits for another
// one's write lock before SQLite gives up with SQLITE_BUSY.
const busyTimeout = 10_000

// Store is a store.Store kept in one SQLite file. It is safe for concurrent
// use, and several processes on one host may open the same file.
//
// A Store writes through a single connection, so its writers queue in
// order rather than poll for SQLite's lock. Reads use a pool of read-only
// connections and never wait for writes. Every query runs as a statement
// prepared once per connection (see prepared.go). The update callbacks of
// the Update methods run inside the write transaction: they must be quick
// and must not call the Store.
type Store struct {
	read  *db // read-only connections
	write *db // one connection, for every write
}

// idleReaders is how many read connections the pool keeps open between
// requests (database/sql keeps 2 by default): opening a connection costs
// far more than a query, and each keeps its own prepared statements.
func idleReaders() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// Open opens the SQLite database at path, creating the file (mode 0600) and
// its parent directory (mode 0700) when they are missing, and migrates its
// schema to the latest version. The caller must Close the store.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open sqlite store: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	if err := createFile(abs); err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	write, err := sql.Open("sqlite", dataSourceName(abs, false))
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}
	write.SetMaxOpenConns(1)
	read, err := sql.Open("sqlite", dataSourceName(abs, true))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}
	read.SetMaxIdleConns(idleReaders())
	s := &Store{read: &db{DB: read}, write: &db{DB: write}}
	if err := migrate(ctx, write); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}
	return s, nil
}

// createFile creates the database file with owner-only permissions before
// SQLite does (SQLite would use 0644, and gives its -wal and -shm files the
// database file's mode), and its parent directory if that is missing.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// dataSourceName returns the URI that opens the file at the absolute path
// with the settings every connection needs, read-only or not.
func dataSourceName(path string, readOnly bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.Itoa(busyTimeout))
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "1")
	q.Set("_txlock", "immediate")
	if readOnly {
		q.Set("_query_only", "1")
	}
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows volume name
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// Close closes the database's statements and connections.
func (s *Store) Close() error {
	return errors.Join(s.read.close(), s.write.close())
}

// dbtx is what *db and *txn have in common.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a transaction on the write connection, which holds the
// database's write lock from its start (see _txlock), and commits it if fn
// returns nil. Otherwise it rolls back and returns fn's error unchanged.
// Once the transaction is over, it prepares the queries fn ran that were
// not prepared yet, for the next transaction.
func (s *Store) inTx(ctx context.Context, fn func(*txn) error) error {
	sqlTx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	tx := &txn{Tx: sqlTx, db: s.write}
	defer func() {
		tx.Rollback()
		for _, q := range tx.missing {
			s.write.prepared(ctx, q)
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// dbError maps the driver's errors callers branch on to the store's
// sentinels: no rows to store.ErrNotFound, a violated primary-key or unique
// constraint to store.ErrAlreadyExists. It returns other errors unchanged.
func dbError(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var serr *sqlite.Error
	if errors.As(err, &serr) {
		switch serr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return store.ErrAlreadyExists
		}
	}
	return err
}

var _ store.Store = (*Store)(nil)
