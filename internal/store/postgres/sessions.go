package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ListSessions returns the refresh-token families of the user, newest login
// (AuthTime) first, then most recently used, then by family ID (byte order).
// Each is described by its newest token: the latest created, preferring one
// not rotated, then the greatest hash. Revoked and expired families are
// included.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]store.Session, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT family_id, client_id, user_id, scopes, auth_time, created_at, expires_at, revoked_at IS NOT NULL
		FROM (
			SELECT DISTINCT ON (family_id) *
			FROM refresh_tokens WHERE user_id = $1
			ORDER BY family_id, created_at DESC, rotated_at IS NULL DESC, hash COLLATE "C" DESC
		) AS newest
		ORDER BY auth_time DESC, created_at DESC, family_id COLLATE "C"`, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", userID, err)
	}
	ss, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Session, error) {
		var sess store.Session
		err := row.Scan(&sess.FamilyID, &sess.ClientID, &sess.UserID, &sess.Scopes, &sess.AuthTime, &sess.LastUsed,
			&sess.ExpiresAt, &sess.Revoked)
		sess.Scopes = fromList(sess.Scopes)
		sess.AuthTime, sess.LastUsed, sess.ExpiresAt = sess.AuthTime.UTC(), sess.LastUsed.UTC(), sess.ExpiresAt.UTC()
		return sess, err
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", userID, err)
	}
	return ss, nil
}

// RevokeUserSessions revokes, at now, every refresh token of the user that is
// not revoked yet and returns the IDs of the families it revoked a token of,
// in byte order. It holds the lock of each family of the user, taken in
// byte order, so a concurrent rotation either completes first, and its
// successor is revoked too, or finds its token revoked. A family the user
// starts once the families are read is a login after the revocation.
func (s *Store) RevokeUserSessions(ctx context.Context, userID string, now time.Time) ([]string, error) {
	var revoked []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT DISTINCT family_id FROM refresh_tokens
			WHERE user_id = $1 AND revoked_at IS NULL`, userID)
		if err != nil {
			return err
		}
		families, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(families) == 0 {
			return nil
		}
		slices.Sort(families)
		for _, f := range families {
			if err := lockFamily(ctx, tx, f); err != nil {
				return err
			}
		}
		rows, err = tx.Query(ctx, `UPDATE refresh_tokens SET revoked_at = $3
			WHERE user_id = $1 AND family_id = ANY($2) AND revoked_at IS NULL
			RETURNING family_id`, userID, families, now)
		if err != nil {
			return err
		}
		revoked, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("revoke sessions of %q: %w", userID, err)
	}
	slices.Sort(revoked)
	return slices.Compact(revoked), nil
}
