// Package storetest is the conformance suite every store.Store
// implementation runs, so that the SQLite and PostgreSQL stores behave alike
// (the shape of dex's storage/conformance).
//
// A backend's test calls Run with a function that opens a new, empty store:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite covers every method and every documented branch of store.Store,
// including, under 50 concurrent callers, refresh-token rotation with reuse
// detection (RFC 9700 §4.14.2), authorization-code redemption (RFC 6749
// §4.1.2), login-failure counting, one-time identifiers and the event log,
// which a concurrent reader must follow without missing an event. It
// compares records exactly, except that a nil and an empty list are alike;
// optional documents (a client's JWKS, a token's claims, an event's data)
// must also keep nil apart from empty. The times it stores have millisecond
// precision and must come back equal and in UTC; durations must keep every
// nanosecond. Lists must be sorted by byte value, whatever the database's
// collation.
package storetest
