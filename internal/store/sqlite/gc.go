package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// expiredRecords are the statements DeleteExpired runs, each with its
// cut-off time: now, or eventsBefore for the events.
var expiredRecords = []struct {
	what, sql string
	events    bool
}{
	{what: "authorization codes", sql: `DELETE FROM auth_codes WHERE expires_at <= ?`},
	{what: "refresh tokens", sql: `DELETE FROM refresh_tokens WHERE expires_at <= ?`},
	{what: "access tokens", sql: `DELETE FROM access_tokens WHERE expires_at <= ?`},
	{what: "one-time identifiers", sql: `DELETE FROM used_jtis WHERE expires_at <= ?`},
	{what: "join tokens", sql: `DELETE FROM join_tokens WHERE expires_at <= ?`},
	// A throttle state still counts at last_failure + window exactly.
	{what: "throttle states", sql: `DELETE FROM throttles WHERE expires_at < ?`},
	{what: "events", sql: `DELETE FROM events WHERE created_at < ?`, events: true},
}

// DeleteExpired removes, in one write transaction, the authorization codes,
// refresh tokens, opaque access tokens, one-time identifiers and join tokens
// expired at now, the throttle states that no longer count or lock at now, and the
// events created before eventsBefore. It returns how many records it removed.
func (s *Store) DeleteExpired(ctx context.Context, now, eventsBefore time.Time) (int64, error) {
	var total int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, r := range expiredRecords {
			cutoff := now
			if r.events {
				cutoff = eventsBefore
			}
			res, err := tx.ExecContext(ctx, r.sql, micros(cutoff))
			if err != nil {
				return fmt.Errorf("%s: %w", r.what, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("%s: %w", r.what, err)
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired: %w", err)
	}
	return total, nil
}
