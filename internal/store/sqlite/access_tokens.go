package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const accessTokenColumns = `hash, client_id, subject, family_id, claims, created_at, expires_at, revoked_at`

// CreateAccessToken stores the opaque token t; store.ErrAlreadyExists if its
// hash is taken.
func (s *Store) CreateAccessToken(ctx context.Context, t store.AccessToken) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO access_tokens (`+accessTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.Hash, t.ClientID, t.Subject, t.FamilyID, nullBlob(t.Claims), micros(t.CreatedAt), micros(t.ExpiresAt),
		nullMicros(t.RevokedAt))
	if err != nil {
		return fmt.Errorf("create access token: %w", dbError(err))
	}
	return nil
}

// GetAccessToken returns the opaque token with that hash, revoked or
// expired or not, or store.ErrNotFound.
func (s *Store) GetAccessToken(ctx context.Context, hash string) (store.AccessToken, error) {
	t, err := scanAccessToken(s.read.QueryRowContext(ctx, `SELECT `+accessTokenColumns+` FROM access_tokens WHERE hash = ?`, hash))
	if err != nil {
		return store.AccessToken{}, fmt.Errorf("get access token: %w", dbError(err))
	}
	return t, nil
}

// RevokeAccessToken revokes the opaque token with that hash at now, or
// store.ErrNotFound. A token revoked before keeps its RevokedAt.
func (s *Store) RevokeAccessToken(ctx context.Context, hash string, now time.Time) error {
	res, err := s.write.ExecContext(ctx, `UPDATE access_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE hash = ?`,
		micros(now), hash)
	if err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("revoke access token: %w", store.ErrNotFound)
	}
	return nil
}

// RevokeFamilyAccessTokens revokes, at now, the opaque tokens of the session
// that are not revoked yet and returns how many that was. An empty familyID
// names no session (tokens without one are not revoked): it returns 0.
func (s *Store) RevokeFamilyAccessTokens(ctx context.Context, familyID string, now time.Time) (int, error) {
	if familyID == "" {
		return 0, nil
	}
	res, err := s.write.ExecContext(ctx, `UPDATE access_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`,
		micros(now), familyID)
	if err != nil {
		return 0, fmt.Errorf("revoke access tokens of family %q: %w", familyID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("revoke access tokens of family %q: %w", familyID, err)
	}
	return int(n), nil
}

// scanAccessToken reads a row of accessTokenColumns.
func scanAccessToken(row scanner) (store.AccessToken, error) {
	var (
		t                    store.AccessToken
		claims               sql.Null[[]byte]
		createdAt, expiresAt int64
		revokedAt            sql.NullInt64
	)
	err := row.Scan(&t.Hash, &t.ClientID, &t.Subject, &t.FamilyID, &claims, &createdAt, &expiresAt, &revokedAt)
	if err != nil {
		return store.AccessToken{}, err
	}
	t.Claims = fromNullBlob(claims)
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromMicros(createdAt), fromMicros(expiresAt), fromNullMicros(revokedAt)
	return t, nil
}
