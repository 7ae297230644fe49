package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const eventColumns = `id, type, subject, session_id, client_id, token_id, data, created_at`

// AppendEvent appends e, ignoring its ID, and returns the ID it was given.
//
// It locks the events table against other appends (readers go on) until it
// commits, so appends commit one at a time in ID order, whichever replica
// makes them: a reader following the log with ListEvents never sees an ID
// before a smaller one that was still to commit. A bare sequence would hand
// out IDs in one order and commit them in another. An ID is never given
// twice, even once the event is deleted.
func (s *Store) AppendEvent(ctx context.Context, e store.Event) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE events IN EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock events: %w", err)
		}
		if err := tx.QueryRow(ctx, `INSERT INTO events (type, subject, session_id, client_id, token_id, data, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			e.Type, e.Subject, e.SessionID, e.ClientID, e.TokenID, e.Data, e.CreatedAt).Scan(&id); err != nil {
			return err
		}
		// Delivered to every listener when the transaction commits.
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, eventChannel, strconv.FormatInt(id, 10))
		return err
	})
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
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE id > $1 ORDER BY id LIMIT $2`,
		afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	es, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Event, error) {
		var e store.Event
		err := row.Scan(&e.ID, &e.Type, &e.Subject, &e.SessionID, &e.ClientID, &e.TokenID, &e.Data, &e.CreatedAt)
		e.CreatedAt = e.CreatedAt.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return es, nil
}
