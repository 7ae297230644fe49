package postgres

import (
	"context"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// eventChannel is the LISTEN/NOTIFY channel AppendEvent notifies, with the
// new event's ID as payload, when its transaction commits.
const eventChannel = "gatehouse_events"

// ListenEvents implements store.EventNotifier with LISTEN on a connection of
// its own, held until ctx is done: every replica sharing the database is
// notified of every committed AppendEvent.
func (s *Store) ListenEvents(ctx context.Context, notify func()) error {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("listen for events: %w", err)
	}
	// The session will be LISTENing: take it out of the pool for good.
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+eventChannel); err != nil {
		return fmt.Errorf("listen for events: %w", err)
	}
	notify()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("wait for event notification: %w", err)
		}
		notify()
	}
}

var _ store.EventNotifier = (*Store)(nil)
