package sqlite

import (
	"context"
	"fmt"
	"time"
)

// GetConsent returns the scopes the user granted the client, or
// store.ErrNotFound. A consent to no scopes is nil with a nil error.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) ([]string, error) {
	var scopes string
	err := s.read.QueryRowContext(ctx, `SELECT scopes FROM consents WHERE user_id = ? AND client_id = ?`,
		userID, clientID).Scan(&scopes)
	if err != nil {
		return nil, fmt.Errorf("get consent of %q to %q: %w", userID, clientID, dbError(err))
	}
	l, err := decodeList(scopes)
	if err != nil {
		return nil, fmt.Errorf("get consent of %q to %q: decode scopes: %w", userID, clientID, err)
	}
	return l, nil
}

// PutConsent records that the user granted the client scopes at now,
// replacing any earlier consent.
func (s *Store) PutConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`,
		userID, clientID, encodeList(scopes), micros(now))
	if err != nil {
		return fmt.Errorf("put consent of %q to %q: %w", userID, clientID, err)
	}
	return nil
}
