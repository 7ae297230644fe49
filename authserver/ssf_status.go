package authserver

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Stream status (SSF 1.0 §8.1.2). A stream is created enabled. While it is
// paused nothing is delivered on it — neither pushed nor answered to a poll
// — and its events are held: they stay in the store (within
// Config.EventRetention) and the stream's cursor stays where it was, so
// delivery resumes with the first event not yet delivered when the stream
// is enabled again. While it is disabled nothing is delivered and nothing
// is held: enabling it skips the events appended up to then.
//
// The receiver (with scope ssf.manage) sets the status at the status
// endpoint; the transmitter pauses a push stream itself after
// Config.PushPauseAfter of failed deliveries without a break (ssf_push.go).

// Stream statuses.
const (
	statusEnabled  = "enabled"
	statusPaused   = "paused"
	statusDisabled = "disabled"
)

// pathSSFStatus is the status endpoint below the issuer.
const pathSSFStatus = "/ssf/status"

// maxStatusReason bounds the reason a receiver may give.
const maxStatusReason = 1024

// streamStatus is the body of the status endpoint's answers and of an
// update request (SSF 1.0 §8.1.2.1–2).
type streamStatus struct {
	StreamID string `json:"stream_id"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// state returns st's status and its reason.
func (st *stream) state() (status, reason string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.status, st.reason
}

// enabled reports whether st delivers events now.
func (st *stream) enabled() bool {
	status, _ := st.state()
	return status == statusEnabled
}

// readStatus is SSF 1.0 §8.1.2.1.
func (s *Server) readStatus(w http.ResponseWriter, r *http.Request, c store.Client) error {
	st, err := s.streamOf(r.URL.Query().Get("stream_id"), c)
	if err != nil {
		return err
	}
	status, reason := st.state()
	oauth.WriteJSON(w, http.StatusOK, streamStatus{StreamID: st.id, Status: status, Reason: reason})
	return nil
}

// updateStatus is SSF 1.0 §8.1.2.2.
func (s *Server) updateStatus(w http.ResponseWriter, r *http.Request, c store.Client) error {
	var req streamStatus
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	switch {
	case req.Status != statusEnabled && req.Status != statusPaused && req.Status != statusDisabled:
		return ssfError(http.StatusBadRequest, oauth.ErrInvalidRequest, "status must be enabled, paused or disabled")
	case len(req.Reason) > maxStatusReason:
		return ssfError(http.StatusBadRequest, oauth.ErrInvalidRequest, fmt.Sprintf("reason is longer than %d bytes", maxStatusReason))
	}
	st, err := s.streamOf(req.StreamID, c)
	if err != nil {
		return err
	}
	if err := s.setStatus(r.Context(), st, req.Status, req.Reason); err != nil {
		return s.internal(r.Context(), "set stream status", err)
	}
	s.audit(r.Context(), "ssf stream status set", "client_id", c.ID, "stream_id", st.id, "status", req.Status)
	oauth.WriteJSON(w, http.StatusOK, streamStatus{StreamID: st.id, Status: req.Status, Reason: req.Reason})
	return nil
}

// setStatus sets st's status and wakes its pusher and its long polls. A
// disabled stream that is enabled or paused again skips every event
// appended so far.
func (s *Server) setStatus(ctx context.Context, st *stream, status, reason string) error {
	var last int64
	if old, _ := st.state(); old == statusDisabled && status != statusDisabled {
		var err error
		if last, err = s.lastEventID(ctx, st.cursorNow()); err != nil {
			return err
		}
	}
	st.mu.Lock()
	st.status, st.reason = status, reason
	st.cursor = max(st.cursor, last)
	st.mu.Unlock()
	s.ssf.wake.notify()
	return nil
}

// cursorNow returns st's cursor.
func (st *stream) cursorNow() int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.cursor
}

// lastEventID returns the ID of the newest stored event after after, or
// after if there is none. It reads at most the events still retained.
func (s *Server) lastEventID(ctx context.Context, after int64) (int64, error) {
	const page = 1000
	for {
		events, err := s.cfg.Store.ListEvents(ctx, after, page)
		if err != nil {
			return 0, fmt.Errorf("list events: %w", err)
		}
		if len(events) > 0 {
			after = events[len(events)-1].ID
		}
		if len(events) < page {
			return after, nil
		}
	}
}
