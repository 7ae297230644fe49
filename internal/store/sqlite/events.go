package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const eventColumns = `id, type, subject, session_id, client_id, token_id, data, created_at`

// AppendEvent appends e, ignoring its ID, and returns the ID it was given.
// Appends commit one at a time through the write lock, in ID order, so a
// reader following the log with ListEvents never sees an ID before a smaller
// one; an ID is never given twice, even once the event is deleted.
func (s *Store) AppendEvent(ctx context.Context, e store.Event) (int64, error) {
	var id int64
	err := s.write.QueryRowContext(ctx, `INSERT INTO events (type, subject, session_id, client_id, token_id, data, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		e.Type, e.Subject, e.SessionID, e.ClientID, e.TokenID, nullBlob(e.Data), micros(e.CreatedAt)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("append event %q: %w", e.Type, err)
	}
	return id, nil
}

// ListEvents returns at most limit events with IDs greater than afterID, in
// ID order; none if limit is zero or less.
func (s *Store) ListEvents(ctx context.Context, afterID int64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE id > ? ORDER BY id LIMIT ?`,
		afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var es []store.Event
	for rows.Next() {
		var (
			e       store.Event
			data    sql.Null[[]byte]
			created int64
		)
		if err := rows.Scan(&e.ID, &e.Type, &e.Subject, &e.SessionID, &e.ClientID, &e.TokenID, &data, &created); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		e.Data, e.CreatedAt = fromNullBlob(data), fromMicros(created)
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return es, nil
}
