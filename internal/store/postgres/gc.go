package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// expiredRecords are the statements DeleteExpired runs, each with the
// arguments it takes: its cut-off times.
var expiredRecords = []struct {
	what, sql string
	args      func(now, eventsBefore time.Time) []any
}{
	// A redeemed code stays while a replay of it could still revoke
	// something (RFC 6749 §4.1.2): until eventsBefore (which lies beyond
	// the lifetime of any access token it issued) has passed its expiry
	// and no refresh token of its family is usable.
	{what: "authorization codes", sql: `DELETE FROM auth_codes WHERE expires_at <= $1 AND (redeemed_at IS NULL
		OR expires_at < $2 AND NOT EXISTS (SELECT 1 FROM refresh_tokens r
			WHERE r.family_id = auth_codes.family_id AND r.revoked_at IS NULL AND r.expires_at > $1))`,
		args: func(now, before time.Time) []any { return []any{now, before} }},
	{what: "refresh tokens", sql: `DELETE FROM refresh_tokens WHERE expires_at <= $1`, args: atNow},
	{what: "access tokens", sql: `DELETE FROM access_tokens WHERE expires_at <= $1`, args: atNow},
	{what: "one-time identifiers", sql: `DELETE FROM used_jtis WHERE expires_at <= $1`, args: atNow},
	{what: "join tokens", sql: `DELETE FROM join_tokens WHERE expires_at <= $1`, args: atNow},
	// A throttle state still counts at last_failure + window exactly.
	{what: "throttle states", sql: `DELETE FROM throttles WHERE expires_at < $1`, args: atNow},
	{what: "events", sql: `DELETE FROM events WHERE created_at < $1`,
		args: func(_, before time.Time) []any { return []any{before} }},
}

func atNow(now, _ time.Time) []any { return []any{now} }

// DeleteExpired removes, in one transaction, the refresh tokens, opaque
// access tokens, one-time identifiers and join tokens expired at now, the
// authorization codes expired at now that no replay needs any more (see
// store.Store.DeleteExpired), the throttle states that no longer count or lock at now, and the
// events created before eventsBefore. It returns how many records it removed.
func (s *Store) DeleteExpired(ctx context.Context, now, eventsBefore time.Time) (int64, error) {
	var total int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for _, r := range expiredRecords {
			tag, err := tx.Exec(ctx, r.sql, r.args(now, eventsBefore)...)
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
