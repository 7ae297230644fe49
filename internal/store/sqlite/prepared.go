package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// SQLite compiles every statement before it runs it, and for the point
// queries on the authorization server's hot paths (a client by ID, a token
// by hash) compiling costs about as much as running. The driver compiles a
// query passed to *sql.DB anew each time; a *sql.Stmt keeps it compiled on
// each connection it has run on. So every query of the store runs as a
// statement prepared on first use and kept until Close: the queries are
// constant strings, a few dozen in all.

// db is a *sql.DB whose ExecContext, QueryContext and QueryRowContext run
// prepared statements. It is safe for concurrent use.
type db struct {
	*sql.DB
	stmts sync.Map // query → *sql.Stmt
}

// prepared returns the statement for query, preparing it if this is its
// first use; nil if preparing fails (the caller then runs the query
// unprepared, which reports the same error if it is not a passing one).
func (d *db) prepared(ctx context.Context, query string) *sql.Stmt {
	if st, ok := d.stmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	st, err := d.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if prev, loaded := d.stmts.LoadOrStore(query, st); loaded { // prepared concurrently
		st.Close()
		return prev.(*sql.Stmt)
	}
	return st
}

// cached returns the statement for query if it has been prepared.
func (d *db) cached(query string) *sql.Stmt {
	if st, ok := d.stmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	return nil
}

func (d *db) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := d.prepared(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return d.DB.ExecContext(ctx, query, args...)
}

func (d *db) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := d.prepared(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return d.DB.QueryContext(ctx, query, args...)
}

func (d *db) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := d.prepared(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return d.DB.QueryRowContext(ctx, query, args...)
}

// close closes the prepared statements and then the database.
func (d *db) close() error {
	var errs []error
	d.stmts.Range(func(q, st any) bool {
		errs = append(errs, st.(*sql.Stmt).Close())
		d.stmts.Delete(q)
		return true
	})
	return errors.Join(append(errs, d.DB.Close())...)
}

// txn is a transaction on the write connection whose queries run the
// statements prepared on it. A query not prepared yet runs unprepared —
// preparing it would need the connection the transaction holds — and is
// prepared once the transaction ends (see Store.inTx).
type txn struct {
	*sql.Tx
	db      *db
	missing []string
}

func (t *txn) stmt(ctx context.Context, query string) *sql.Stmt {
	if st := t.db.cached(query); st != nil {
		return t.Tx.StmtContext(ctx, st)
	}
	t.missing = append(t.missing, query)
	return nil
}

func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}
