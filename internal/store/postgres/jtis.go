package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// UseJTI records the one-time identifier id until expiresAt, in one
// statement; store.ErrAlreadyExists if it is recorded and has not expired at
// now. An expired record is replaced. Of concurrent calls, the later wait for
// the first to commit and then see its record.
func (s *Store) UseJTI(ctx context.Context, id string, expiresAt, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO used_jtis (id, expires_at) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at WHERE used_jtis.expires_at <= $3`,
		id, expiresAt, now)
	if err != nil {
		return fmt.Errorf("use jti: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("use jti: %w", store.ErrAlreadyExists)
	}
	return nil
}
