package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const tokenColumns = `hash, family_id, client_id, user_id, scopes, auth_time, created_at, expires_at,
	rotated_at, successor_hash, revoked_at`

// CreateRefreshToken inserts t; store.ErrAlreadyExists if its hash is taken.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if _, err := insertToken(ctx, s.write, t); err != nil {
		return fmt.Errorf("create refresh token: %w", err)
	}
	return nil
}

// GetRefreshToken returns the token with that hash, or store.ErrNotFound.
func (s *Store) GetRefreshToken(ctx context.Context, hash string) (store.RefreshToken, error) {
	t, err := getToken(ctx, s.read, hash)
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("get refresh token: %w", err)
	}
	return t, nil
}

// RotateRefreshToken exchanges the token with that hash for next at now, in
// one transaction, following the rules of store.Store.RotateRefreshToken.
// When it detects reuse it commits the family's revocation before returning
// store.ErrReused.
func (s *Store) RotateRefreshToken(ctx context.Context, hash string, next store.RefreshToken, now time.Time, grace time.Duration) (store.Rotation, error) {
	var rot store.Rotation
	var reused error
	err := s.inTx(ctx, func(tx *txn) error {
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
func rotate(ctx context.Context, tx *txn, hash string, next store.RefreshToken, now time.Time, grace time.Duration) (store.Rotation, error) {
	old, err := getToken(ctx, tx, hash)
	if err != nil {
		return store.Rotation{}, err
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
		_, err = tx.ExecContext(ctx, `UPDATE refresh_tokens SET rotated_at = ?, successor_hash = ? WHERE hash = ?`,
			micros(now), successor.Hash, old.Hash)
		if err != nil {
			return store.Rotation{}, fmt.Errorf("mark rotated: %w", err)
		}
		return store.Rotation{Old: old, Successor: successor}, nil
	}
	successor, err := getToken(ctx, tx, old.SuccessorHash)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Rotation{}, fmt.Errorf("get successor: %w", err)
	}
	if err == nil && replayable(old, successor, now, grace) {
		return store.Rotation{Old: old, Successor: successor, Replayed: true}, nil
	}
	if _, err := revokeFamily(ctx, tx, old.FamilyID, now); err != nil {
		return store.Rotation{}, err
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
// revoked yet and returns how many that was.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) (int, error) {
	return revokeFamily(ctx, s.write, familyID, now)
}

// revokeFamily revokes the tokens of the family that are not revoked yet.
func revokeFamily(ctx context.Context, db dbtx, familyID string, now time.Time) (int, error) {
	res, err := db.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`,
		micros(now), familyID)
	if err != nil {
		return 0, fmt.Errorf("revoke refresh family %q: %w", familyID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("revoke refresh family %q: %w", familyID, err)
	}
	return int(n), nil
}

// insertToken inserts t and returns it as stored.
func insertToken(ctx context.Context, db dbtx, t store.RefreshToken) (store.RefreshToken, error) {
	t, err := scanToken(db.QueryRowContext(ctx, `INSERT INTO refresh_tokens (`+tokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+tokenColumns,
		t.Hash, t.FamilyID, t.ClientID, t.UserID, encodeList(t.Scopes), micros(t.AuthTime),
		micros(t.CreatedAt), micros(t.ExpiresAt), nullMicros(t.RotatedAt), t.SuccessorHash, nullMicros(t.RevokedAt)))
	if err != nil {
		return store.RefreshToken{}, dbError(err)
	}
	return t, nil
}

// getToken returns the token with that hash, or store.ErrNotFound.
func getToken(ctx context.Context, db dbtx, hash string) (store.RefreshToken, error) {
	t, err := scanToken(db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM refresh_tokens WHERE hash = ?`, hash))
	if err != nil {
		return store.RefreshToken{}, dbError(err)
	}
	return t, nil
}

// scanToken reads a row of tokenColumns.
func scanToken(row scanner) (store.RefreshToken, error) {
	var (
		t                              store.RefreshToken
		scopes                         string
		authTime, createdAt, expiresAt int64
		rotatedAt, revokedAt           sql.NullInt64
	)
	err := row.Scan(&t.Hash, &t.FamilyID, &t.ClientID, &t.UserID, &scopes, &authTime, &createdAt, &expiresAt,
		&rotatedAt, &t.SuccessorHash, &revokedAt)
	if err != nil {
		return store.RefreshToken{}, err
	}
	if t.Scopes, err = decodeList(scopes); err != nil {
		return store.RefreshToken{}, fmt.Errorf("decode scopes: %w", err)
	}
	t.AuthTime, t.CreatedAt, t.ExpiresAt = fromMicros(authTime), fromMicros(createdAt), fromMicros(expiresAt)
	t.RotatedAt, t.RevokedAt = fromNullMicros(rotatedAt), fromNullMicros(revokedAt)
	return t, nil
}
