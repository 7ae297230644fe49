package authserver

import (
	"context"
	"time"
)

// Run does the server's background work until ctx is done: it reloads the
// signing keys every KeyReloadInterval, so that rotations made elsewhere take
// effect, collects garbage every GCInterval, and pushes the SETs of push
// streams (ssf_push.go). Failures are logged and
// retried at the next tick. Run returns nil when ctx is done. Start it once
// per Server, beside serving it.
func (s *Server) Run(ctx context.Context) error {
	reload := time.NewTicker(s.cfg.KeyReloadInterval)
	defer reload.Stop()
	gc := time.NewTicker(s.cfg.GCInterval)
	defer gc.Stop()
	s.collectGarbage(ctx)
	go s.listenEvents(ctx)
	go s.runPushers(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reload.C:
			if err := s.keys.reload(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.ErrorContext(ctx, "reload signing keys", "err", err)
			}
		case <-gc.C:
			s.collectGarbage(ctx)
		}
	}
}

// collectGarbage deletes what can no longer be used: expired codes, tokens,
// replay-cache entries and throttle states, and events older than
// EventRetention. Several replicas may run it at once.
func (s *Server) collectGarbage(ctx context.Context) (int64, error) {
	now := s.cfg.Now().UTC()
	keep, err := s.eventRetention(ctx)
	var n int64
	if err == nil {
		n, err = s.cfg.Store.DeleteExpired(ctx, now, now.Add(-keep))
	}
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.ErrorContext(ctx, "collect garbage", "err", err)
		}
		return n, err
	}
	if n > 0 {
		s.cfg.Logger.InfoContext(ctx, "garbage collected", "records", n)
	}
	return n, nil
}

// eventRetention is how long events are kept: EventRetention, and never
// less than the longest access-token lifetime plus a minute, so a receiver
// can learn of a revocation for as long as the revoked token could be used.
func (s *Server) eventRetention(ctx context.Context) (time.Duration, error) {
	longest, err := s.longestTokenLifetime(ctx)
	if err != nil {
		return 0, err
	}
	return max(s.cfg.EventRetention, longest+time.Minute), nil
}
