package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const codeColumns = `hash, client_id, user_id, redirect_uri, scopes, nonce, code_challenge,
	code_challenge_method, auth_time, created_at, expires_at, redeemed_at, family_id`

// CreateAuthCode stores c; store.ErrAlreadyExists if its hash is taken.
func (s *Store) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO auth_codes (`+codeColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, c.ClientID, c.UserID, c.RedirectURI, encodeList(c.Scopes), c.Nonce, c.CodeChallenge,
		c.CodeChallengeMethod, micros(c.AuthTime), micros(c.CreatedAt), micros(c.ExpiresAt),
		nullMicros(c.RedeemedAt), c.FamilyID)
	if err != nil {
		return fmt.Errorf("create authorization code: %w", dbError(err))
	}
	return nil
}

// RedeemAuthCode redeems the code with that hash at now, recording familyID,
// in one write transaction, following the rules of store.Store.RedeemAuthCode.
// With store.ErrReused it returns the code as the first redemption left it.
func (s *Store) RedeemAuthCode(ctx context.Context, hash string, now time.Time, familyID string) (store.AuthCode, error) {
	var c store.AuthCode
	err := s.inTx(ctx, func(tx *txn) error {
		var err error
		if c, err = scanCode(tx.QueryRowContext(ctx, `SELECT `+codeColumns+` FROM auth_codes WHERE hash = ?`, hash)); err != nil {
			return dbError(err)
		}
		if err := redeemable(c, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE auth_codes SET redeemed_at = ?, family_id = ? WHERE hash = ?`,
			micros(now), familyID, hash)
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
func scanCode(row scanner) (store.AuthCode, error) {
	var (
		c                              store.AuthCode
		scopes                         string
		authTime, createdAt, expiresAt int64
		redeemedAt                     sql.NullInt64
	)
	err := row.Scan(&c.Hash, &c.ClientID, &c.UserID, &c.RedirectURI, &scopes, &c.Nonce, &c.CodeChallenge,
		&c.CodeChallengeMethod, &authTime, &createdAt, &expiresAt, &redeemedAt, &c.FamilyID)
	if err != nil {
		return store.AuthCode{}, err
	}
	if c.Scopes, err = decodeList(scopes); err != nil {
		return store.AuthCode{}, fmt.Errorf("decode scopes: %w", err)
	}
	c.AuthTime, c.CreatedAt, c.ExpiresAt = fromMicros(authTime), fromMicros(createdAt), fromMicros(expiresAt)
	c.RedeemedAt = fromNullMicros(redeemedAt)
	return c, nil
}
