package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// eventPollInterval is how often ListenEvents looks for new events.
const eventPollInterval = 500 * time.Millisecond

// ListenEvents implements store.EventNotifier by polling: SQLite has no
// notifications. Within one process the authorization server wakes its long
// polls itself; this covers events appended by another process on the same
// file, such as the admin CLI, within eventPollInterval.
func (s *Store) ListenEvents(ctx context.Context, notify func()) error {
	last, err := s.lastEventID(ctx)
	if err != nil {
		return err
	}
	notify()
	t := time.NewTicker(eventPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		id, err := s.lastEventID(ctx)
		if err != nil {
			return err
		}
		if id != last {
			last = id
			notify()
		}
	}
}

func (s *Store) lastEventID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&id); err != nil {
		return 0, fmt.Errorf("last event id: %w", err)
	}
	return id, nil
}

var _ store.EventNotifier = (*Store)(nil)
