package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// RecordLoginFailure counts a failed login for key at now in one write
// transaction, following the rules of store.Store.RecordLoginFailure; lockFor
// runs inside it, so it must be quick and must not call the Store. A nil
// lockFor never locks.
func (s *Store) RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration, lockFor func(failures int) time.Duration) (store.Throttle, error) {
	var t store.Throttle
	err := s.inTx(ctx, func(tx *txn) error {
		old, err := getThrottle(ctx, tx, key)
		if err != nil {
			return err
		}
		next := old.Next(now, window, lockFor)
		t, err = scanThrottle(key, tx.QueryRowContext(ctx, `INSERT INTO throttles (key, failures, last_failure, locked_until, expires_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_failure = excluded.last_failure,
				locked_until = excluded.locked_until, expires_at = excluded.expires_at
			RETURNING failures, last_failure, locked_until`,
			key, next.Failures, micros(next.LastFailure), micros(next.LockedUntil), micros(next.Expiry(window))))
		return err
	})
	if err != nil {
		return store.Throttle{}, fmt.Errorf("record login failure of %q: %w", key, err)
	}
	return t, nil
}

// GetThrottle returns the state of key, or a zero Throttle with Key set.
func (s *Store) GetThrottle(ctx context.Context, key string) (store.Throttle, error) {
	t, err := getThrottle(ctx, s.read, key)
	if err != nil {
		return store.Throttle{}, fmt.Errorf("get throttle of %q: %w", key, err)
	}
	return t, nil
}

// getThrottle returns the state of key, or a zero Throttle with Key set.
func getThrottle(ctx context.Context, db dbtx, key string) (store.Throttle, error) {
	t, err := scanThrottle(key, db.QueryRowContext(ctx, `SELECT failures, last_failure, locked_until FROM throttles WHERE key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Throttle{Key: key}, nil
	}
	return t, err
}

// scanThrottle reads the failures, last_failure and locked_until of key.
func scanThrottle(key string, row scanner) (store.Throttle, error) {
	t := store.Throttle{Key: key}
	var lastFailure, lockedUntil int64
	if err := row.Scan(&t.Failures, &lastFailure, &lockedUntil); err != nil {
		return store.Throttle{}, err
	}
	t.LastFailure, t.LockedUntil = fromMicros(lastFailure), fromMicros(lockedUntil)
	return t, nil
}

// ResetThrottle forgets the failures of key.
func (s *Store) ResetThrottle(ctx context.Context, key string) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM throttles WHERE key = ?`, key); err != nil {
		return fmt.Errorf("reset throttle of %q: %w", key, err)
	}
	return nil
}
