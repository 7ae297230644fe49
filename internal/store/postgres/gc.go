package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// expiredRecords are the statements DeleteExpired runs, each with its
// cut-off time: now, or eventsBefore for the events.
var expiredRecords = []struct {
	what, sql string
	events    bool
}{
	{what: "authorization codes", sql: `DELETE FROM auth_codes WHERE expires_at <= $1`},
	{what: "refresh tokens", sql: `DELETE FROM refresh_tokens WHERE expires_at <= $1`},
	{what: "access tokens", sql: `DELETE FROM access_tokens WHERE expires_at <= $1`},
	{what: "one-time identifiers", sql: `DELETE FROM used_jtis WHERE expires_at <= $1`},
	{what: "join tokens", sql: `DELETE FROM join_tokens WHERE expires_at <= $1`},
	// A throttle state still counts at last_failure + window exactly.
	{what: "throttle states", sql: `DELETE FROM throttles WHERE expires_at < $1`},
	{what: "events", sql: `DELETE FROM events WHERE created_at < $1`, events: true},
}

// DeleteExpired removes, in one transaction, the authorization codes,
// refresh tokens, opaque access tokens, one-time identifiers and join tokens
// expired at now, the throttle states that no longer count or lock at now,
// and the events created before eventsBefore. It returns how many records it
// removed.
func (s *Store) DeleteExpired(ctx context.Context, now, eventsBefore time.Time) (int64, error) {
	var total int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for _, r := range expiredRecords {
			cutoff := now
			if r.events {
				cutoff = eventsBefore
			}
			tag, err := tx.Exec(ctx, r.sql, cutoff)
			if err != nil {
				return fmt.Errorf("%s: %w", r.what, err)
			}
			total += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired: %w", err)
	}
	return total, nil
}
