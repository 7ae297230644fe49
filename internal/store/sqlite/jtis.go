package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// UseJTI records the one-time identifier id until expiresAt, in one
// statement; store.ErrAlreadyExists if it is recorded and has not expired at
// now. An expired record is replaced.
func (s *Store) UseJTI(ctx context.Context, id string, expiresAt, now time.Time) error {
	res, err := s.write.ExecContext(ctx, `INSERT INTO used_jtis (id, expires_at) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at WHERE used_jtis.expires_at <= ?`,
		id, micros(expiresAt), micros(now))
	if err != nil {
		return fmt.Errorf("use jti: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("use jti: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("use jti: %w", store.ErrAlreadyExists)
	}
	return nil
}
