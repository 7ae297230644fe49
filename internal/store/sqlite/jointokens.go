package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const joinTokenColumns = `hash, name, created_at, expires_at, used_at`

// CreateJoinToken stores t; store.ErrAlreadyExists if its hash is taken.
func (s *Store) CreateJoinToken(ctx context.Context, t store.JoinToken) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO join_tokens (`+joinTokenColumns+`) VALUES (?, ?, ?, ?, ?)`,
		t.Hash, t.Name, micros(t.CreatedAt), micros(t.ExpiresAt), nullMicros(t.UsedAt))
	if err != nil {
		return fmt.Errorf("create join token: %w", dbError(err))
	}
	return nil
}

// GetJoinToken returns the join token with that hash, or store.ErrNotFound.
func (s *Store) GetJoinToken(ctx context.Context, hash string) (store.JoinToken, error) {
	t, err := scanJoinToken(s.read.QueryRowContext(ctx, `SELECT `+joinTokenColumns+` FROM join_tokens WHERE hash = ?`, hash))
	if err != nil {
		return store.JoinToken{}, fmt.Errorf("get join token: %w", dbError(err))
	}
	return t, nil
}

// UseJoinToken uses the join token with that hash at now in one write
// transaction, following the rules of store.JoinTokens.UseJoinToken.
func (s *Store) UseJoinToken(ctx context.Context, hash string, now time.Time) (store.JoinToken, error) {
	var t store.JoinToken
	err := s.inTx(ctx, func(tx *txn) error {
		var err error
		if t, err = scanJoinToken(tx.QueryRowContext(ctx, `SELECT `+joinTokenColumns+` FROM join_tokens WHERE hash = ?`, hash)); err != nil {
			return dbError(err)
		}
		if err := usable(t, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE join_tokens SET used_at = ? WHERE hash = ?`, micros(now), hash)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrReused) || errors.Is(err, store.ErrInactive) {
			return t, fmt.Errorf("use join token: %w", err)
		}
		return store.JoinToken{}, fmt.Errorf("use join token: %w", err)
	}
	return t, nil
}

// usable reports why t cannot be used at now, or nil if it can.
func usable(t store.JoinToken, now time.Time) error {
	switch {
	case t.UsedAt != nil:
		return store.ErrReused
	case !now.Before(t.ExpiresAt):
		return store.ErrInactive
	}
	return nil
}

// scanJoinToken reads a row of joinTokenColumns.
func scanJoinToken(row scanner) (store.JoinToken, error) {
	var (
		t                  store.JoinToken
		created, expiresAt int64
		used               sql.NullInt64
	)
	if err := row.Scan(&t.Hash, &t.Name, &created, &expiresAt, &used); err != nil {
		return store.JoinToken{}, err
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = fromMicros(created), fromMicros(expiresAt), fromNullMicros(used)
	return t, nil
}
