package postgres

import (
	"context"
	"fmt"
	"time"
)

// GetConsent returns the scopes the user granted the client, or
// store.ErrNotFound. A consent to no scopes is nil with a nil error.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) ([]string, error) {
	var scopes []string
	err := s.pool.QueryRow(ctx, `SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2`,
		userID, clientID).Scan(&scopes)
	if err != nil {
		return nil, fmt.Errorf("get consent of %q to %q: %w", userID, clientID, dbError(err))
	}
	return fromList(scopes), nil
}

// PutConsent records that the user granted the client scopes at now,
// replacing any earlier consent.
func (s *Store) PutConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`,
		userID, clientID, list(scopes), now)
	if err != nil {
		return fmt.Errorf("put consent of %q to %q: %w", userID, clientID, err)
	}
	return nil
}
