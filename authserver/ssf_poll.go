package authserver

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// broadcast wakes every waiter at once: a waiter takes the current channel,
// and notify closes it and starts a new one. Waking costs the same for any
// number of waiters and never blocks on one. The zero value is ready.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed by the next notify.
func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

// listenEvents wakes the long polls whenever the store says another
// process appended events (PostgreSQL: LISTEN/NOTIFY), until ctx is done.
// It restarts a failed listener after a pause; long polls still end by
// their own deadline meanwhile, so a lost notification costs latency, not
// events.
func (s *Server) listenEvents(ctx context.Context) {
	n := s.ssf.notifier
	if n == nil {
		return
	}
	for ctx.Err() == nil {
		err := n.ListenEvents(ctx, s.ssf.wake.notify)
		if ctx.Err() != nil {
			return
		}
		s.cfg.Logger.ErrorContext(ctx, "listen for events; retrying in 1s", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// pollRequest is RFC 8936 §2.4.
type pollRequest struct {
	MaxEvents         *int                       `json:"maxEvents"`
	ReturnImmediately bool                       `json:"returnImmediately"`
	Ack               []string                   `json:"ack"`
	SetErrs           map[string]json.RawMessage `json:"setErrs"`
}

// pollResponse is RFC 8936 §2.5.
type pollResponse struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable,omitempty"`
}

// pollStream is RFC 8936 §2.4–2.5 with long polling: without
// returnImmediately it waits up to maxWait for an event. Events a receiver
// acknowledged — or reported an error for (setErrs) — are never sent again.
func (s *Server) pollStream(w http.ResponseWriter, r *http.Request, c store.Client) error {
	st, err := s.streamOf(r.PathValue("stream"), c)
	if err != nil {
		return err
	}
	if st.push != nil {
		return ssfError(http.StatusBadRequest, oauth.ErrInvalidRequest, "the stream delivers by push")
	}
	var req pollRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	limit := defaultPollEvents
	if req.MaxEvents != nil {
		if *req.MaxEvents < 0 {
			return ssfError(http.StatusBadRequest, oauth.ErrInvalidRequest, "maxEvents must not be negative")
		}
		limit = min(*req.MaxEvents, maxPollEvents)
	}
	acks := req.Ack
	for jti := range req.SetErrs {
		acks = append(acks, jti)
	}
	after := st.acknowledge(acks)
	ctx := r.Context()
	resp, err := s.collect(ctx, st, after, limit)
	if err != nil || len(resp.Sets) > 0 || req.ReturnImmediately || limit == 0 {
		return s.writePoll(w, resp, err)
	}
	select {
	case s.ssf.longPoll <- struct{}{}:
		defer func() { <-s.ssf.longPoll }()
	default: // too many waiting: answer now, the receiver polls again
		return s.writePoll(w, resp, nil)
	}
	deadline := time.NewTimer(s.ssf.maxWait)
	defer deadline.Stop()
	for {
		wake := s.ssf.wake.wait()
		// Read after taking the channel, so no event slips between.
		if resp, err = s.collect(ctx, st, after, limit); err != nil || len(resp.Sets) > 0 {
			return s.writePoll(w, resp, err)
		}
		select {
		case <-wake:
		case <-deadline.C:
			return s.writePoll(w, resp, nil)
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *Server) writePoll(w http.ResponseWriter, resp pollResponse, err error) error {
	if err != nil {
		return err
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// acknowledge records the acknowledged SET IDs of st and returns its
// cursor: the highest event ID acknowledged so far. Malformed IDs are
// ignored.
func (st *stream) acknowledge(jtis []string) int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, jti := range jtis {
		if strings.HasPrefix(jti, "v") {
			st.verifies = slices.DeleteFunc(st.verifies, func(p pendingCheck) bool { return p.jti == jti })
			continue
		}
		// The SET may come from an earlier stream of the receiver (on a
		// replica that restarted, or another one): its event ID still says
		// how far the receiver got. A receiver can only skip its own events.
		if id, _, err := parseSetID(jti); err == nil {
			st.cursor = max(st.cursor, id)
		}
	}
	return st.cursor
}

// collect signs up to limit SETs for st: its pending verification events,
// then the stored events after the event ID after that it asked for. A
// stream that is not enabled gets none (ssf_status.go).
func (s *Server) collect(ctx context.Context, st *stream, after int64, limit int) (pollResponse, error) {
	resp := pollResponse{Sets: map[string]string{}}
	if !st.enabled() {
		return resp, nil
	}
	st.mu.Lock()
	checks := slices.Clone(st.verifies)
	st.mu.Unlock()
	for _, p := range checks {
		if len(resp.Sets) >= limit {
			resp.MoreAvailable = true
			return resp, nil
		}
		raw, err := s.signSET(verificationSET(s.cfg.Issuer, st, p))
		if err != nil {
			return resp, s.internal(ctx, "sign verification SET", err)
		}
		resp.Sets[p.jti] = raw
	}
	// Events the stream did not request are skipped; scan a bounded number
	// of pages so one poll costs a bounded amount of work.
	for range 10 {
		want := limit - len(resp.Sets)
		if want <= 0 {
			break
		}
		events, err := s.cfg.Store.ListEvents(ctx, after, want)
		if err != nil {
			return resp, s.internal(ctx, "list events", err)
		}
		for _, e := range events {
			after = e.ID
			if !slices.Contains(st.delivered, e.Type) {
				continue
			}
			set := newSET(e, s.cfg.Issuer, st.clientID, st.id)
			raw, err := s.signSET(set)
			if err != nil {
				return resp, s.internal(ctx, "sign SET", err)
			}
			resp.Sets[set.ID] = raw
		}
		if len(events) < want {
			return resp, nil
		}
	}
	resp.MoreAvailable = true
	return resp, nil
}
