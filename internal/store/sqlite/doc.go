// Package sqlite is the embedded store.Store: every record lives in one SQLite
// file, opened through modernc.org/sqlite (pure Go, no cgo).
//
// The file runs in WAL mode, so readers never wait for the writer. A Store
// writes through one connection, so its own writers queue without polling,
// and every write transaction begins IMMEDIATE, taking the database's write
// lock before it reads; other processes opening the same file wait up to 10
// seconds for that lock rather than fail. Refresh-token rotation with reuse
// detection (RFC 6749 §10.4, RFC 9700 §4.14.2) and the updater callbacks are
// therefore atomic for every process on the host. Use package postgres to
// run replicas on several hosts.
//
// Times are stored as integer Unix microseconds, the precision PostgreSQL
// keeps, and come back in UTC; durations as integer nanoseconds; lists as
// JSON arrays; optional documents as blobs, NULL when nil. The schema is
// embedded and migrated by Open.
package sqlite
