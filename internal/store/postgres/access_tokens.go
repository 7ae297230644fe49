package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const accessTokenColumns = `hash, client_id, subject, family_id, claims, created_at, expires_at, revoked_at`

// CreateAccessToken stores the opaque token t; store.ErrAlreadyExists if its
// hash is taken.
func (s *Store) CreateAccessToken(ctx context.Context, t store.AccessToken) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO access_tokens (`+accessTokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.Hash, t.ClientID, t.Subject, t.FamilyID, t.Claims, t.CreatedAt, t.ExpiresAt, t.RevokedAt)
	if err != nil {
		return fmt.Errorf("create access token: %w", dbError(err))
	}
	return nil
}

// GetAccessToken returns the opaque token with that hash, revoked or
// expired or not, or store.ErrNotFound.
func (s *Store) GetAccessToken(ctx context.Context, hash string) (store.AccessToken, error) {
	t, err := scanAccessToken(s.pool.QueryRow(ctx, `SELECT `+accessTokenColumns+` FROM access_tokens WHERE hash = $1`, hash))
	if err != nil {
		return store.AccessToken{}, fmt.Errorf("get access token: %w", dbError(err))
	}
	return t, nil
}

// RevokeAccessToken revokes the opaque token with that hash at now, or
// store.ErrNotFound. A token revoked before keeps its RevokedAt.
func (s *Store) RevokeAccessToken(ctx context.Context, hash string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE access_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE hash = $1`,
		hash, now)
	if err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	if tag.RowsAffected() == 0 {
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
	tag, err := s.pool.Exec(ctx, `UPDATE access_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL`,
		familyID, now)
	if err != nil {
		return 0, fmt.Errorf("revoke access tokens of family %q: %w", familyID, err)
	}
	return int(tag.RowsAffected()), nil
}

// scanAccessToken reads a row of accessTokenColumns.
func scanAccessToken(row pgx.Row) (store.AccessToken, error) {
	var t store.AccessToken
	err := row.Scan(&t.Hash, &t.ClientID, &t.Subject, &t.FamilyID, &t.Claims, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt)
	if err != nil {
		return store.AccessToken{}, err
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC(), utc(t.RevokedAt)
	return t, nil
}
