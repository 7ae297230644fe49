package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const tokenColumns = `hash, family_id, client_id, user_id, scopes, auth_time, created_at, expires_at,
	rotated_at, successor_hash, revoked_at`

// familyLock is the first key of the advisory locks that serialise the
// rotations and revocations of one token family ("ghrf"); the second is a
// hash of the family ID.
const familyLock = 0x67687266

// CreateRefreshToken inserts t; store.ErrAlreadyExists if its hash is taken.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if _, err := insertToken(ctx, s.pool, t); err != nil {
		return fmt.Errorf("create refresh token: %w", err)
	}
	return nil
}

// GetRefreshToken returns the token with that hash, or store.ErrNotFound.
func (s *Store) GetRefreshToken(ctx context.Context, hash string) (store.RefreshToken, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM refresh_tokens WHERE hash = $1`, hash))
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("get refresh token: %w", dbError(err))
	}
	return t, nil
}

// RotateRefreshToken exchanges the token with that hash for next at now, in
// one transaction that holds the family's lock and the token's row lock,
// following the rules of store.Store.RotateRefreshToken. When it detects reuse
// it commits the family's revocation before returning store.ErrReused.
func (s *Store) RotateRefreshToken(ctx context.Context, hash string, next store.RefreshToken, now time.Time, grace time.Duration) (store.Rotation, error) {
	var rot store.Rotation
	var reused error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		rot, err = rotate(ctx, tx, hash, next, now, grace)
		if errors.Is(err, store.ErrReused) {
			reused = err
			return nil // commit the revocation
		}
		return err
	})
	if err == nil {
		err = reused
	}
	if err != nil {
		return store.Rotation{}, fmt.Errorf("rotate refresh token: %w", err)
	}
	return rot, nil
}

// rotate carries out RotateRefreshToken within tx.
func rotate(ctx context.Context, tx pgx.Tx, hash string, next store.RefreshToken, now time.Time, grace time.Duration) (store.Rotation, error) {
	var familyID string
	if err := tx.QueryRow(ctx, `SELECT family_id FROM refresh_tokens WHERE hash = $1`, hash).Scan(&familyID); err != nil {
		return store.Rotation{}, dbError(err)
	}
	if err := lockFamily(ctx, tx, familyID); err != nil {
		return store.Rotation{}, err
	}
	old, err := scanToken(tx.QueryRow(ctx, `SELECT `+tokenColumns+` FROM refresh_tokens WHERE hash = $1 FOR UPDATE`, hash))
	if err != nil {
		return store.Rotation{}, dbError(err)
	}
	if old.RevokedAt != nil || !now.Before(old.ExpiresAt) {
		return store.Rotation{}, store.ErrInactive
	}
	if old.RotatedAt == nil {
		if next.FamilyID != old.FamilyID {
			return store.Rotation{}, fmt.Errorf("successor is in family %q, want %q", next.FamilyID, old.FamilyID)
		}
		successor, err := insertToken(ctx, tx, next)
		if err != nil {
			return store.Rotation{}, fmt.Errorf("store successor: %w", err)
		}
		_, err = tx.Exec(ctx, `UPDATE refresh_tokens SET rotated_at = $2, successor_hash = $3 WHERE hash = $1`,
			old.Hash, now, successor.Hash)
		if err != nil {
			return store.Rotation{}, fmt.Errorf("mark rotated: %w", err)
		}
		return store.Rotation{Old: old, Successor: successor}, nil
	}
	successor, err := scanToken(tx.QueryRow(ctx, `SELECT `+tokenColumns+` FROM refresh_tokens WHERE hash = $1`, old.SuccessorHash))
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return store.Rotation{}, fmt.Errorf("get successor: %w", err)
	}
	if err == nil && replayable(old, successor, now, grace) {
		return store.Rotation{Old: old, Successor: successor, Replayed: true}, nil
	}
	if _, err := revokeFamily(ctx, tx, old.FamilyID, now); err != nil {
		return store.Rotation{}, fmt.Errorf("revoke family: %w", err)
	}
	return store.Rotation{}, store.ErrReused
}

// replayable reports whether presenting the rotated token old again at now
// is a retry within the grace window rather than reuse.
func replayable(old, successor store.RefreshToken, now time.Time, grace time.Duration) bool {
	return grace > 0 && !now.After(old.RotatedAt.Add(grace)) &&
		successor.RotatedAt == nil && successor.RevokedAt == nil
}

// RevokeRefreshFamily revokes, at now, every token of the family that is not
// revoked yet and returns how many that was. It holds the family's lock, so a
// concurrent rotation either completes first, and its successor is revoked
// too, or finds its token revoked.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockFamily(ctx, tx, familyID); err != nil {
			return err
		}
		var err error
		n, err = revokeFamily(ctx, tx, familyID, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("revoke refresh family %q: %w", familyID, err)
	}
	return n, nil
}

// lockFamily takes the family's advisory lock until the end of tx. Without
// it, a revocation could miss a successor that a concurrent rotation inserts
// after the revocation's snapshot was taken.
func lockFamily(ctx context.Context, tx pgx.Tx, familyID string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, familyLock, familyID); err != nil {
		return fmt.Errorf("lock family: %w", err)
	}
	return nil
}

// revokeFamily revokes the tokens of the family that are not revoked yet.
func revokeFamily(ctx context.Context, tx pgx.Tx, familyID string, now time.Time) (int, error) {
	tag, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL`,
		familyID, now)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// insertToken inserts t and returns it as stored.
func insertToken(ctx context.Context, db dbtx, t store.RefreshToken) (store.RefreshToken, error) {
	t, err := scanToken(db.QueryRow(ctx, `INSERT INTO refresh_tokens (`+tokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING `+tokenColumns,
		t.Hash, t.FamilyID, t.ClientID, t.UserID, list(t.Scopes), t.AuthTime, t.CreatedAt, t.ExpiresAt,
		t.RotatedAt, t.SuccessorHash, t.RevokedAt))
	if err != nil {
		return store.RefreshToken{}, dbError(err)
	}
	return t, nil
}

// scanToken reads a row of tokenColumns.
func scanToken(row pgx.Row) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := row.Scan(&t.Hash, &t.FamilyID, &t.ClientID, &t.UserID, &t.Scopes, &t.AuthTime, &t.CreatedAt, &t.ExpiresAt,
		&t.RotatedAt, &t.SuccessorHash, &t.RevokedAt)
	if err != nil {
		return store.RefreshToken{}, err
	}
	t.Scopes = fromList(t.Scopes)
	t.AuthTime, t.CreatedAt, t.ExpiresAt = t.AuthTime.UTC(), t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	t.RotatedAt, t.RevokedAt = utc(t.RotatedAt), utc(t.RevokedAt)
	return t, nil
}
