package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const keyColumns = `id, algorithm, public_jwk, sealed_private, created_at, active_at, retired_at, expires_at`

// AddSigningKey stores k; store.ErrAlreadyExists if its ID is taken.
func (s *Store) AddSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO signing_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Algorithm, blob(k.PublicJWK), blob(k.SealedPrivate), micros(k.CreatedAt), micros(k.ActiveAt),
		nullMicros(k.RetiredAt), nullMicros(k.ExpiresAt))
	if err != nil {
		return fmt.Errorf("add signing key %q: %w", k.ID, dbError(err))
	}
	return nil
}

// ListSigningKeys returns every stored key ordered by CreatedAt, then ID.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	defer rows.Close()
	var ks []store.SigningKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list signing keys: %w", err)
		}
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return ks, nil
}

// UpdateSigningKey applies update to the key with that ID and stores the
// result, keeping its ID, in one transaction. If update returns an error,
// nothing is written and UpdateSigningKey returns that error unchanged.
func (s *Store) UpdateSigningKey(ctx context.Context, id string, update func(*store.SigningKey) error) (store.SigningKey, error) {
	var k store.SigningKey
	var updateErr error
	err := s.inTx(ctx, func(tx *txn) error {
		var err error
		if k, err = scanKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM signing_keys WHERE id = ?`, id)); err != nil {
			return dbError(err)
		}
		if updateErr = update(&k); updateErr != nil {
			return updateErr
		}
		k, err = scanKey(tx.QueryRowContext(ctx, `UPDATE signing_keys
			SET algorithm = ?, public_jwk = ?, sealed_private = ?, created_at = ?, active_at = ?,
				retired_at = ?, expires_at = ?
			WHERE id = ? RETURNING `+keyColumns,
			k.Algorithm, blob(k.PublicJWK), blob(k.SealedPrivate), micros(k.CreatedAt), micros(k.ActiveAt),
			nullMicros(k.RetiredAt), nullMicros(k.ExpiresAt), id))
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
func scanKey(row scanner) (store.SigningKey, error) {
	var (
		k                    store.SigningKey
		createdAt, activeAt  int64
		retiredAt, expiresAt sql.NullInt64
	)
	err := row.Scan(&k.ID, &k.Algorithm, &k.PublicJWK, &k.SealedPrivate, &createdAt, &activeAt, &retiredAt, &expiresAt)
	if err != nil {
		return store.SigningKey{}, err
	}
	k.PublicJWK, k.SealedPrivate = fromBlob(k.PublicJWK), fromBlob(k.SealedPrivate)
	k.CreatedAt, k.ActiveAt = fromMicros(createdAt), fromMicros(activeAt)
	k.RetiredAt, k.ExpiresAt = fromNullMicros(retiredAt), fromNullMicros(expiresAt)
	return k, nil
}
