package sqlite

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ListSessions returns the refresh-token families of the user, newest login
// (AuthTime) first, then most recently used, then by family ID. Each is
// described by its newest token: the latest created, preferring one not
// rotated, then the greatest hash. Revoked and expired families are included.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]store.Session, error) {
	rows, err := s.read.QueryContext(ctx, `
		SELECT family_id, client_id, user_id, scopes, auth_time, created_at, expires_at, revoked_at IS NOT NULL
		FROM (
			SELECT *, row_number() OVER (
				PARTITION BY family_id
				ORDER BY created_at DESC, rotated_at IS NULL DESC, hash DESC
			) AS newest
			FROM refresh_tokens WHERE user_id = ?
		)
		WHERE newest = 1
		ORDER BY auth_time DESC, created_at DESC, family_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", userID, err)
	}
	defer rows.Close()
	var ss []store.Session
	for rows.Next() {
		var (
			sess                          store.Session
			scopes                        string
			authTime, lastUsed, expiresAt int64
		)
		if err := rows.Scan(&sess.FamilyID, &sess.ClientID, &sess.UserID, &scopes, &authTime, &lastUsed, &expiresAt,
			&sess.Revoked); err != nil {
			return nil, fmt.Errorf("list sessions of %q: %w", userID, err)
		}
		if sess.Scopes, err = decodeList(scopes); err != nil {
			return nil, fmt.Errorf("list sessions of %q: decode scopes: %w", userID, err)
		}
		sess.AuthTime, sess.LastUsed, sess.ExpiresAt = fromMicros(authTime), fromMicros(lastUsed), fromMicros(expiresAt)
		ss = append(ss, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", userID, err)
	}
	return ss, nil
}

// RevokeUserSessions revokes, at now, every refresh token of the user that is
// not revoked yet, in one write transaction, and returns the IDs of the
// families it revoked a token of, in byte order.
func (s *Store) RevokeUserSessions(ctx context.Context, userID string, now time.Time) ([]string, error) {
	rows, err := s.write.QueryContext(ctx, `
		UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL
		RETURNING family_id`, micros(now), userID)
	if err != nil {
		return nil, fmt.Errorf("revoke sessions of %q: %w", userID, err)
	}
	defer rows.Close()
	var families []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			return nil, fmt.Errorf("revoke sessions of %q: %w", userID, err)
		}
		families = append(families, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("revoke sessions of %q: %w", userID, err)
	}
	slices.Sort(families)
	return slices.Compact(families), nil
}
