// Package postgres is the store.Store for several authorization-server
// replicas sharing one PostgreSQL database, through a pgx connection pool.
//
// Updates run in transactions that lock the rows they read (SELECT ... FOR
// UPDATE). Refresh-token rotation and family revocation also take a
// transaction-scoped advisory lock on the token family, so that rotation with
// reuse detection (RFC 6749 §10.4, RFC 9700 §4.14.2) stays atomic whichever
// replicas the requests reach: a successor stored concurrently with a
// revocation of its family cannot escape it. Revoking all of a user's
// sessions takes the lock of each of the user's families, in byte order.
// Authorization-code redemption and login-failure counting lock the row they
// change, so exactly one of concurrent redemptions succeeds and no failure is
// lost. Appends to the event log lock the events table against each other,
// so IDs commit in increasing order and a reader following the log never
// misses one.
//
// Every query runs as a statement that pgx prepares once per connection and
// keeps in its statement cache (pgx.QueryExecModeCacheStatement, the
// default mode; a DSN may choose another with default_query_exec_mode), so
// the hot point queries are not parsed and planned anew each time.
//
// Times are timestamptz (microsecond precision) and come back in UTC;
// durations are bigint nanoseconds; lists are text arrays; optional
// documents are bytea, NULL when nil. The schema is embedded and migrated by
// Open, in the first schema of the connection's search_path.
package postgres
