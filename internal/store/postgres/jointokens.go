package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const joinTokenColumns = `hash, name, created_at, expires_at, used_at`

// CreateJoinToken stores t; store.ErrAlreadyExists if its hash is taken.
func (s *Store) CreateJoinToken(ctx context.Context, t store.JoinToken) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO join_tokens (`+joinTokenColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		t.Hash, t.Name, t.CreatedAt, t.ExpiresAt, t.UsedAt)
	if err != nil {
		return fmt.Errorf("create join token: %w", dbError(err))
	}
	return nil
}

// GetJoinToken returns the join token with that hash, or store.ErrNotFound.
func (s *Store) GetJoinToken(ctx context.Context, hash string) (store.JoinToken, error) {
	t, err := scanJoinToken(s.pool.QueryRow(ctx, `SELECT `+joinTokenColumns+` FROM join_tokens WHERE hash = $1`, hash))
	if err != nil {
		return store.JoinToken{}, fmt.Errorf("get join token: %w", dbError(err))
	}
	return t, nil
}

// UseJoinToken uses the join token with that hash at now in one
// transaction that holds the token's row lock, following the rules of
// store.JoinTokens.UseJoinToken: of concurrent uses, the later wait for the
// first to commit and then see the token used.
func (s *Store) UseJoinToken(ctx context.Context, hash string, now time.Time) (store.JoinToken, error) {
	var t store.JoinToken
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if t, err = scanJoinToken(tx.QueryRow(ctx, `SELECT `+joinTokenColumns+` FROM join_tokens WHERE hash = $1 FOR UPDATE`, hash)); err != nil {
			return dbError(err)
		}
		if err := usable(t, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE join_tokens SET used_at = $2 WHERE hash = $1`, hash, now)
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
func scanJoinToken(row pgx.Row) (store.JoinToken, error) {
	var t store.JoinToken
	if err := row.Scan(&t.Hash, &t.Name, &t.CreatedAt, &t.ExpiresAt, &t.UsedAt); err != nil {
		return store.JoinToken{}, err
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC(), utc(t.UsedAt)
	return t, nil
}
