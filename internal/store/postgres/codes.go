package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const codeColumns = `hash, client_id, user_id, redirect_uri, scopes, nonce, code_challenge,
	code_challenge_method, auth_time, created_at, expires_at, redeemed_at, family_id`

// CreateAuthCode stores c; store.ErrAlreadyExists if its hash is taken.
func (s *Store) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO auth_codes (`+codeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		c.Hash, c.ClientID, c.UserID, c.RedirectURI, list(c.Scopes), c.Nonce, c.CodeChallenge,
		c.CodeChallengeMethod, c.AuthTime, c.CreatedAt, c.ExpiresAt, c.RedeemedAt, c.FamilyID)
	if err != nil {
		return fmt.Errorf("create authorization code: %w", dbError(err))
	}
	return nil
}

// RedeemAuthCode redeems the code with that hash at now, recording familyID,
// in one transaction that holds the code's row lock, following the rules of
// store.Store.RedeemAuthCode. With store.ErrReused it returns the code as the
// first redemption left it.
func (s *Store) RedeemAuthCode(ctx context.Context, hash string, now time.Time, familyID string) (store.AuthCode, error) {
	var c store.AuthCode
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if c, err = scanCode(tx.QueryRow(ctx, `SELECT `+codeColumns+` FROM auth_codes WHERE hash = $1 FOR UPDATE`, hash)); err != nil {
			return dbError(err)
		}
		if err := redeemable(c, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE auth_codes SET redeemed_at = $2, family_id = $3 WHERE hash = $1`,
			hash, now, familyID)
		return err
	})
	switch {
	case errors.Is(err, store.ErrReused):
		return c, fmt.Errorf("redeem authorization code: %w", err)
	case err != nil:
		return store.AuthCode{}, fmt.Errorf("redeem authorization code: %w", err)
	}
	return c, nil
}

// redeemable reports why c cannot be redeemed at now, or nil if it can.
// Reuse comes before expiry: a replay must be told apart from a late first
// redemption whenever it comes.
func redeemable(c store.AuthCode, now time.Time) error {
	switch {
	case c.RedeemedAt != nil:
		return store.ErrReused
	case !now.Before(c.ExpiresAt):
		return store.ErrInactive
	}
	return nil
}

// scanCode reads a row of codeColumns.
func scanCode(row pgx.Row) (store.AuthCode, error) {
	var c store.AuthCode
	err := row.Scan(&c.Hash, &c.ClientID, &c.UserID, &c.RedirectURI, &c.Scopes, &c.Nonce, &c.CodeChallenge,
		&c.CodeChallengeMethod, &c.AuthTime, &c.CreatedAt, &c.ExpiresAt, &c.RedeemedAt, &c.FamilyID)
	if err != nil {
		return store.AuthCode{}, err
	}
	c.Scopes = fromList(c.Scopes)
	c.AuthTime, c.CreatedAt, c.ExpiresAt = c.AuthTime.UTC(), c.CreatedAt.UTC(), c.ExpiresAt.UTC()
	c.RedeemedAt = utc(c.RedeemedAt)
	return c, nil
}
