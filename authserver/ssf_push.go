package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
)

// Push delivery (RFC 8935). A stream created with delivery method
// deliveryPush and an endpoint_url gets its SETs POSTed there, one per
// request, by a goroutine of its own that Run starts (runPushers). The
// goroutine delivers the stream's pending verification events, then the
// stored events after the stream's cursor, in event-ID order; only 202
// Accepted counts as delivered and advances the cursor. On any other
// answer, or none within pushTimeout, it stops and retries the same SET
// after an exponential backoff, jittered, capped at pushMaxBackoff. So
// delivery is at-least-once and in order: a receiver that was down gets
// every event still retained, none skipped; one whose 202 was lost gets
// that SET again and must deduplicate by jti.
//
// Retries end: once deliveries have failed without a success for
// Config.PushPauseAfter, the stream is paused (ssf_status.go), logged and
// counted in gatehouse_ssf_push_paused_total. Its events are held; when the
// receiver or an operator enables the stream again, delivery resumes with
// the first event not delivered.
//
// One stream's receiver, however slow or dead, costs its own goroutine and
// at most one connection: it never delays another stream, a poll, or a
// request to the server.

// deliveryPush is the delivery method of RFC 8935 (SSF 1.0 §6.1.1).
const deliveryPush = "urn:ietf:rfc:8935"

// Defaults of pushConfig.
const (
	pushTimeout    = 10 * time.Second // one delivery attempt, headers and body
	pushMinBackoff = time.Second
	pushMaxBackoff = 30 * time.Second
	pushPauseAfter = 10 * time.Minute // of failures without a success
	pushPage       = 100              // events read from the store at once
)

// pushConfig tunes push delivery; the zero value uses the defaults above.
type pushConfig struct {
	timeout, minBackoff, maxBackoff time.Duration
	// pauseAfter is Config.PushPauseAfter: zero for the default, negative
	// for never.
	pauseAfter time.Duration
	client     *http.Client // if nil, pushClient
	// now measures failures on the clock of the backoff timers; if nil,
	// time.Now.
	now func() time.Time
}

// pushMetrics count push deliveries. Every label has a bounded set of
// values.
type pushMetrics struct {
	attempts *prometheus.CounterVec // outcome: delivered or failed
	paused   prometheus.Counter
}

func newPushMetrics(reg prometheus.Registerer) (*pushMetrics, error) {
	m := &pushMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "ssf", Name: "push_attempts_total",
			Help: "SETs POSTed to push receivers, by outcome: delivered (202) or failed.",
		}, []string{"outcome"}),
		paused: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "ssf", Name: "push_paused_total",
			Help: "Push streams paused after their deliveries failed for PushPauseAfter without a success.",
		}),
	}
	var err error
	m.attempts = register(reg, m.attempts, &err)
	m.paused = register(reg, m.paused, &err)
	return m, err
}

// pushClient does not follow redirects: the receiver's endpoint is the one
// it registered, and only its own 202 counts.
var pushClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// pushTarget is where and how a push stream's SETs are delivered.
type pushTarget struct {
	endpoint      string
	authorization string // the Authorization header to send, or ""
}

// pushTargetOf validates a requested delivery: nil for poll (the default),
// a target for push, a 400 error otherwise.
func pushTargetOf(d *streamDelivery) (*pushTarget, error) {
	if d == nil || d.Method == deliveryPoll {
		return nil, nil
	}
	if d.Method != deliveryPush {
		return nil, ssfError(http.StatusBadRequest, oauth.ErrInvalidRequest,
			"delivery method must be "+deliveryPoll+" or "+deliveryPush)
	}
	if err := checkPushEndpoint(d.EndpointURL); err != nil {
		return nil, ssfError(http.StatusBadRequest, oauth.ErrInvalidRequest, err.Error())
	}
	if strings.ContainsAny(d.AuthorizationHeader, "\r\n") {
		return nil, ssfError(http.StatusBadRequest, oauth.ErrInvalidRequest, "authorization_header must be one line")
	}
	return &pushTarget{endpoint: d.EndpointURL, authorization: d.AuthorizationHeader}, nil
}

// checkPushEndpoint accepts an absolute https URL without credentials or
// fragment, and an http one only on a loopback host (a receiver beside the
// server, or a test), where nothing crosses a network.
func checkPushEndpoint(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("push delivery needs an endpoint_url")
	case err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "":
		return errors.New("endpoint_url must be an absolute URL")
	case u.User != nil || u.Fragment != "":
		return errors.New("endpoint_url must not carry credentials or a fragment")
	case u.Scheme == "https", loopbackHTTP(raw):
		return nil
	}
	return errors.New("endpoint_url must be https (http only on a loopback host)")
}

// deliveryOf is the delivery member of st's configuration.
func (s *Server) deliveryOf(st *stream) streamDelivery {
	if st.push != nil {
		return streamDelivery{Method: deliveryPush, EndpointURL: st.push.endpoint}
	}
	return streamDelivery{Method: deliveryPoll, EndpointURL: s.cfg.Issuer + pathSSFPoll + st.id}
}

// runPushers keeps one pushing goroutine per push stream until ctx is done:
// it starts one for every stream created, and deleteStream stops it.
func (s *Server) runPushers(ctx context.Context) {
	t := s.ssf
	for {
		changed := t.pushStreams.wait()
		t.mu.Lock()
		for _, st := range t.streams {
			if st.push != nil && st.stopPush == nil {
				pctx, cancel := context.WithCancel(ctx)
				st.stopPush = cancel
				go s.push(pctx, st)
			}
		}
		t.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// stopPushing ends st's pushing goroutine, if any. t.mu must be held.
func (st *stream) stopPushing() {
	if st.stopPush != nil {
		st.stopPush()
	}
}

// push delivers st's events whenever events are appended, until ctx is
// done. After a failure it waits out the backoff, not for an event: new
// events do not make a dead receiver's retries more frequent. After
// pauseAfter of failures without a success it pauses the stream, and waits
// until the stream is enabled again.
func (s *Server) push(ctx context.Context, st *stream) {
	cfg := s.ssf.push
	now := cfg.now
	if now == nil {
		now = time.Now
	}
	pauseAfter := orDefault(cfg.pauseAfter, pushPauseAfter)
	var backoff time.Duration
	var failingSince time.Time // zero while deliveries succeed
	for {
		wake := s.ssf.wake.wait()
		var retry <-chan time.Time
		if !st.enabled() {
			// Held: a status change wakes us.
			backoff, failingSince = 0, time.Time{}
		} else if delivered, err := s.pushPending(ctx, st); ctx.Err() != nil {
			return
		} else if err == nil {
			backoff, failingSince = 0, time.Time{}
			// A lost cross-replica notification costs latency, not events.
			retry = time.After(s.ssf.maxWait)
		} else {
			if failingSince.IsZero() || delivered > 0 {
				failingSince = now()
			}
			if failed := now().Sub(failingSince); pauseAfter > 0 && failed >= pauseAfter {
				s.pausePush(ctx, st, failed, err)
				continue
			}
			backoff = nextBackoff(backoff, orDefault(cfg.minBackoff, pushMinBackoff), orDefault(cfg.maxBackoff, pushMaxBackoff))
			s.cfg.Logger.WarnContext(ctx, "ssf push failed; retrying", "stream_id", st.id,
				"client_id", st.clientID, "err", err, "retry_in", backoff)
			wake, retry = nil, time.After(backoff)
		}
		select {
		case <-wake:
		case <-retry:
		case <-ctx.Done():
			return
		}
	}
}

// pausePush pauses st after its deliveries failed for failed, the last
// time with err.
func (s *Server) pausePush(ctx context.Context, st *stream, failed time.Duration, err error) {
	reason := fmt.Sprintf("paused by the transmitter: deliveries failed for %v; last error: %v", failed.Round(time.Second), err)
	if len(reason) > maxStatusReason {
		reason = reason[:maxStatusReason]
	}
	st.mu.Lock()
	if st.status == statusEnabled { // else the receiver changed it meanwhile
		st.status, st.reason = statusPaused, reason
	}
	st.mu.Unlock()
	s.ssf.metrics.paused.Inc()
	s.cfg.Logger.ErrorContext(ctx, "ssf push stream paused; enable it at the status endpoint to resume",
		"stream_id", st.id, "client_id", st.clientID, "failing_for", failed, "err", err)
}

// orDefault returns d, or def if d is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// nextBackoff doubles prev within [lo, hi], with jitter over its upper
// half, so streams pushing to one recovering receiver spread their retries.
func nextBackoff(prev, lo, hi time.Duration) time.Duration {
	d := min(max(2*prev, lo), hi)
	return d/2 + rand.N(d/2+1)
}

// pushPending delivers, in order, st's pending verification events and the
// stored events after its cursor that it requested, stopping at the first
// one not accepted, or when the stream is no longer enabled. The cursor
// advances past each event accepted, and past events the stream did not
// request. It returns how many SETs were accepted.
func (s *Server) pushPending(ctx context.Context, st *stream) (delivered int, err error) {
	st.mu.Lock()
	checks, after := slices.Clone(st.verifies), st.cursor
	st.mu.Unlock()
	for _, p := range checks {
		raw, err := s.signSET(verificationSET(s.cfg.Issuer, st, p))
		if err != nil {
			return delivered, fmt.Errorf("sign verification SET: %w", err)
		}
		if err := s.deliver(ctx, st.push, raw); err != nil {
			return delivered, err
		}
		delivered++
		st.acknowledge([]string{p.jti})
	}
	for {
		events, err := s.cfg.Store.ListEvents(ctx, after, pushPage)
		if err != nil {
			return delivered, fmt.Errorf("list events: %w", err)
		}
		for _, e := range events {
			if !st.enabled() {
				return delivered, nil
			}
			if slices.Contains(st.delivered, e.Type) {
				raw, err := s.signSET(newSET(e, s.cfg.Issuer, st.clientID, st.id))
				if err != nil {
					return delivered, fmt.Errorf("sign SET: %w", err)
				}
				if err := s.deliver(ctx, st.push, raw); err != nil {
					return delivered, err
				}
				delivered++
			}
			after = e.ID
			st.acknowledge([]string{setID(e.ID, st.id)})
		}
		if len(events) < pushPage {
			return delivered, nil
		}
	}
}

// verificationSET is the SET of the verification event p (SSF 1.0 §8.1.4).
func verificationSET(issuer string, st *stream, p pendingCheck) secevent.SET {
	body, _ := json.Marshal(secevent.EventPayload{EventTimestamp: p.at.Unix(), State: p.state})
	return secevent.SET{Issuer: issuer, IssuedAt: p.at.Unix(), ID: p.jti, Audience: []string{st.clientID},
		Subject: &secevent.SubjectID{Format: secevent.FormatOpaque, ID: st.id},
		Events:  map[string]json.RawMessage{secevent.Verification: body}}
}

// deliver POSTs one SET to the target (RFC 8935 §2). Only 202 Accepted
// counts as delivered; the error of a 400 carries the receiver's error
// object (RFC 8935 §2.3).
func (s *Server) deliver(ctx context.Context, to *pushTarget, raw string) error {
	cfg := s.ssf.push
	ctx, cancel := context.WithTimeout(ctx, orDefault(cfg.timeout, pushTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to.endpoint, strings.NewReader(raw))
	if err != nil {
		return fmt.Errorf("push request: %w", err)
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	if to.authorization != "" {
		req.Header.Set("Authorization", to.authorization)
	}
	client := cfg.client
	if client == nil {
		client = pushClient
	}
	resp, err := client.Do(req)
	if err != nil {
		s.ssf.metrics.attempts.WithLabelValues("failed").Inc()
		return fmt.Errorf("push: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusAccepted {
		s.ssf.metrics.attempts.WithLabelValues("failed").Inc()
		// The error becomes the stream's pause reason, which its owner
		// reads: it carries the body only in the shape of an RFC 8935 §2.3
		// error, so pointing a stream at an internal service reads nothing
		// of that service's answers.
		var e struct {
			Err         string `json:"err"`
			Description string `json:"description"`
		}
		if json.Unmarshal(body, &e) == nil && e.Err != "" {
			return fmt.Errorf("push: receiver answered %d, err %q (%q), want 202", resp.StatusCode, e.Err, e.Description)
		}
		return fmt.Errorf("push: receiver answered %d, want 202", resp.StatusCode)
	}
	s.ssf.metrics.attempts.WithLabelValues("delivered").Inc()
	return nil
}
