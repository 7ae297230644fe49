package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// RecordLoginFailure counts a failed login for key at now, following the
// rules of store.Store.RecordLoginFailure, in one transaction that holds the
// key's row lock (creating the row first if need be); lockFor runs inside it,
// so it must be quick and must not call the Store. A nil lockFor never locks.
func (s *Store) RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration, lockFor func(failures int) time.Duration) (store.Throttle, error) {
	var t store.Throttle
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// A new row (no failures) to lock; concurrent callers wait for the
		// first to commit it, then lock it in turn.
		_, err := tx.Exec(ctx, `INSERT INTO throttles (key, failures, last_failure, locked_until, expires_at)
			VALUES ($1, 0, $2, $2, $2) ON CONFLICT (key) DO NOTHING`, key, time.Time{})
		if err != nil {
			return err
		}
		old, err := scanThrottle(key, tx.QueryRow(ctx, `SELECT failures, last_failure, locked_until
			FROM throttles WHERE key = $1 FOR UPDATE`, key))
		if err != nil {
			return err
		}
		next := old.Next(now, window, lockFor)
		t, err = scanThrottle(key, tx.QueryRow(ctx, `UPDATE throttles
			SET failures = $2, last_failure = $3, locked_until = $4, expires_at = $5
			WHERE key = $1 RETURNING failures, last_failure, locked_until`,
			key, next.Failures, next.LastFailure, next.LockedUntil, next.Expiry(window)))
		return err
	})
	if err != nil {
		return store.Throttle{}, fmt.Errorf("record login failure of %q: %w", key, err)
	}
	return t, nil
}

// GetThrottle returns the state of key, or a zero Throttle with Key set.
func (s *Store) GetThrottle(ctx context.Context, key string) (store.Throttle, error) {
	t, err := scanThrottle(key, s.pool.QueryRow(ctx, `SELECT failures, last_failure, locked_until FROM throttles WHERE key = $1`, key))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.Throttle{Key: key}, nil
	case err != nil:
		return store.Throttle{}, fmt.Errorf("get throttle of %q: %w", key, err)
	}
	return t, nil
}

// scanThrottle reads the failures, last_failure and locked_until of key.
func scanThrottle(key string, row pgx.Row) (store.Throttle, error) {
	t := store.Throttle{Key: key}
	if err := row.Scan(&t.Failures, &t.LastFailure, &t.LockedUntil); err != nil {
		return store.Throttle{}, err
	}
	t.LastFailure, t.LockedUntil = t.LastFailure.UTC(), t.LockedUntil.UTC()
	return t, nil
}

// ResetThrottle forgets the failures of key.
func (s *Store) ResetThrottle(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM throttles WHERE key = $1`, key); err != nil {
		return fmt.Errorf("reset throttle of %q: %w", key, err)
	}
	return nil
}
