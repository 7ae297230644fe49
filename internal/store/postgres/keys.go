package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const keyColumns = `id, algorithm, public_jwk, sealed_private, created_at, active_at, retired_at, expires_at`

// AddSigningKey stores k; store.ErrAlreadyExists if its ID is taken.
func (s *Store) AddSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO signing_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, k.Algorithm, blob(k.PublicJWK), blob(k.SealedPrivate), k.CreatedAt, k.ActiveAt, k.RetiredAt, k.ExpiresAt)
	if err != nil {
		return fmt.Errorf("add signing key %q: %w", k.ID, dbError(err))
	}
	return nil
}

// ListSigningKeys returns every stored key ordered by CreatedAt, then ID.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	ks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.SigningKey, error) { return scanKey(row) })
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return ks, nil
}

// UpdateSigningKey applies update to the key with that ID and stores the
// result, keeping its ID, in one transaction that holds the key's row lock.
// If update returns an error, nothing is written and UpdateSigningKey returns
// that error unchanged.
func (s *Store) UpdateSigningKey(ctx context.Context, id string, update func(*store.SigningKey) error) (store.SigningKey, error) {
	var k store.SigningKey
	var updateErr error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if k, err = scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM signing_keys WHERE id = $1 FOR UPDATE`, id)); err != nil {
			return dbError(err)
		}
		if updateErr = update(&k); updateErr != nil {
			return updateErr
		}
		k, err = scanKey(tx.QueryRow(ctx, `UPDATE signing_keys
			SET algorithm = $2, public_jwk = $3, sealed_private = $4, created_at = $5, active_at = $6,
				retired_at = $7, expires_at = $8
			WHERE id = $1 RETURNING `+keyColumns,
			id, k.Algorithm, blob(k.PublicJWK), blob(k.SealedPrivate), k.CreatedAt, k.ActiveAt, k.RetiredAt, k.ExpiresAt))
		return err
	})
	switch {
	case updateErr != nil:
		return store.SigningKey{}, updateErr
	case err != nil:
		return store.SigningKey{}, fmt.Errorf("update signing key %q: %w", id, err)
	}
	return k, nil
}

// scanKey reads a row of keyColumns.
func scanKey(row pgx.Row) (store.SigningKey, error) {
	var k store.SigningKey
	err := row.Scan(&k.ID, &k.Algorithm, &k.PublicJWK, &k.SealedPrivate, &k.CreatedAt, &k.ActiveAt, &k.RetiredAt, &k.ExpiresAt)
	if err != nil {
		return store.SigningKey{}, err
	}
	k.PublicJWK, k.SealedPrivate = fromBlob(k.PublicJWK), fromBlob(k.SealedPrivate)
	k.CreatedAt, k.ActiveAt = k.CreatedAt.UTC(), k.ActiveAt.UTC()
	k.RetiredAt, k.ExpiresAt = utc(k.RetiredAt), utc(k.ExpiresAt)
	return k, nil
}
