package ssf

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
)

// Push delivery (RFC 8935). A receiver with Config.PushURL registers a
// push stream whose endpoint_url is PushURL and whose authorization_header
// is Config.PushAuthorization, and serves PushHandler at PushURL. The
// transmitter POSTs each SET there; the handler authenticates the
// transmitter by that header, verifies the SET exactly as a polled one
// (the transmitter's keys, "iss", "aud", "iat", "typ", one event), applies
// it to the same Denylist and answers 202 Accepted — or 400 with an error
// object of RFC 8935 §2.3 ("err", "description"), after which the
// transmitter sends the SET again later.
//
// Delivery is at-least-once: a SET whose 202 was lost comes again. The
// handler remembers the jti of every SET it applied for as long as the
// event could still matter (Config.MaxTokenLifetime after it, plus a
// minute), answers a repeat 202 and applies it once. An older SET is
// accepted and not applied: every token it could match has expired.
//
// Run keeps the stream alive: on start it replaces whatever stream its
// client had (a receiver that restarted has a new endpoint or secret, and
// cannot read back the old one's), then every CheckInterval it reads the
// stream's status — creating the stream again when the transmitter lost it
// (a restarted or other replica: Gatehouse keeps streams in memory),
// enabling it again when the transmitter paused it after failed
// deliveries (SSF 1.0 §8.1.2) — and asks for a verification event (SSF 1.0
// §8.1.4). Every SET that arrives, the verification events included,
// counts as contact for StaleAfter: a receiver the transmitter cannot
// reach turns stale even while it can reach the transmitter. When Run
// ends, it deletes the stream.
//
// A new stream starts with the oldest event the transmitter retains, so a
// receiver that starts again learns every revocation of a still live
// token, at the cost of SETs it may have applied before.

// pushState is the push side of a Receiver.
type pushState struct {
	mu       sync.Mutex
	streamID string               // of the receiver's push stream, "" until created
	seen     map[string]time.Time // jti of each SET applied → when it can be forgotten
}

// maxPushBody bounds a pushed SET; jose refuses tokens over 16 KiB anyway.
const maxPushBody = 64 << 10

// setUpPush checks the push settings of cfg and generates the
// authorization header if none is set.
func setUpPush(cfg *Config) error {
	if cfg.PushURL == "" {
		return nil
	}
	u, err := url.Parse(cfg.PushURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("ssf: PushURL %q must be an absolute http or https URL without credentials or fragment", cfg.PushURL)
	}
	if cfg.PushAuthorization == "" {
		secret := make([]byte, 32)
		rand.Read(secret)
		cfg.PushAuthorization = "Bearer " + base64.RawURLEncoding.EncodeToString(secret)
	}
	if strings.ContainsAny(cfg.PushAuthorization, "\r\n") {
		return errors.New("ssf: PushAuthorization must be one line")
	}
	return nil
}

// runPush is Run for a push receiver.
func (r *Receiver) runPush(ctx context.Context) error {
	defer r.deletePushStream(ctx)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := r.checkPush(ctx)
		r.checkStale()
		r.sweep()
		wait := r.cfg.CheckInterval
		switch {
		case err == nil:
			backoff = 100 * time.Millisecond
		case ctx.Err() == nil:
			if r.cfg.OnError != nil {
				r.cfg.OnError(err)
			}
			wait = min(backoff, wait)
			backoff = min(2*backoff, 5*time.Second)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return ctx.Err()
}

// checkPush makes sure the receiver has an enabled push stream, creating
// or enabling it as needed, and asks for a verification event on it.
func (r *Receiver) checkPush(ctx context.Context) error {
	meta, err := r.metadata(ctx)
	if err != nil {
		return err
	}
	r.push.mu.Lock()
	id := r.push.streamID
	r.push.mu.Unlock()
	var enabledAgain error
	if id != "" {
		status, err := r.streamStatus(ctx, meta, id)
		switch {
		case errors.Is(err, errNoStream): // the transmitter lost it
			id = ""
		case err != nil:
			return err
		case status.Status != "enabled":
			if err := r.call(ctx, http.MethodPost, meta.StatusEndpoint, map[string]string{"stream_id": id,
				"status": "enabled", "reason": "enabled by the receiver"}, http.StatusOK, nil); err != nil {
				return err
			}
			// Not a failure, but worth a line in the log.
			enabledAgain = fmt.Errorf("ssf: stream %s was %s (%s); enabled it again", id, status.Status, status.Reason)
		}
	}
	if id == "" {
		if id, err = r.createPushStream(ctx, meta); err != nil {
			return err
		}
		r.push.mu.Lock()
		r.push.streamID = id
		r.push.mu.Unlock()
	}
	if meta.VerificationEndpoint != "" {
		state := make([]byte, 12)
		rand.Read(state)
		if err := r.call(ctx, http.MethodPost, meta.VerificationEndpoint, map[string]string{"stream_id": id,
			"state": base64.RawURLEncoding.EncodeToString(state)}, http.StatusNoContent, nil); err != nil {
			return errors.Join(enabledAgain, err)
		}
	}
	return enabledAgain
}

// statusOf is a stream's status (SSF 1.0 §8.1.2).
type statusOf struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// streamStatus reads the status of stream id; errNoStream if the
// transmitter does not know it. A transmitter without a status endpoint is
// asked for the stream's configuration instead, and the stream taken as
// enabled.
func (r *Receiver) streamStatus(ctx context.Context, meta transmitterMeta, id string) (statusOf, error) {
	if meta.StatusEndpoint == "" {
		var cfg streamConfig
		err := r.call(ctx, http.MethodGet, meta.ConfigurationEndpoint+"?stream_id="+url.QueryEscape(id), nil, http.StatusOK, &cfg)
		return statusOf{Status: "enabled"}, err
	}
	var s statusOf
	err := r.call(ctx, http.MethodGet, meta.StatusEndpoint+"?stream_id="+url.QueryEscape(id), nil, http.StatusOK, &s)
	return s, err
}

// createPushStream deletes the client's streams, if any, and creates a push
// stream to PushURL; it returns the new stream's ID.
func (r *Receiver) createPushStream(ctx context.Context, meta transmitterMeta) (string, error) {
	var streams []streamConfig
	if err := r.call(ctx, http.MethodGet, meta.ConfigurationEndpoint, nil, http.StatusOK, &streams); err != nil {
		return "", err
	}
	for _, s := range streams {
		if err := r.deleteStream(ctx, meta, s.StreamID); err != nil {
			return "", err
		}
	}
	var created streamConfig
	err := r.call(ctx, http.MethodPost, meta.ConfigurationEndpoint, map[string]any{
		"delivery": map[string]string{"method": deliveryPush, "endpoint_url": r.cfg.PushURL,
			"authorization_header": r.cfg.PushAuthorization},
		"events_requested": secevent.Supported, "description": "gatehouse receiver"}, http.StatusCreated, &created)
	if err != nil {
		return "", err
	}
	if created.StreamID == "" {
		return "", errors.New("ssf: the transmitter created a stream without a stream_id")
	}
	return created.StreamID, nil
}

// deletePushStream deletes the receiver's push stream, if it has one, so
// that the transmitter stops pushing to an endpoint that is going away.
func (r *Receiver) deletePushStream(ctx context.Context) {
	r.push.mu.Lock()
	id := r.push.streamID
	r.push.streamID = ""
	r.push.mu.Unlock()
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	meta, err := r.metadata(ctx)
	if err == nil {
		err = r.deleteStream(ctx, meta, id)
	}
	if err != nil && r.cfg.OnError != nil {
		r.cfg.OnError(fmt.Errorf("ssf: delete the push stream on the way out: %w", err))
	}
}

// PushHandler returns the handler of the push endpoint (RFC 8935 §2):
// serve it at Config.PushURL. It is safe for concurrent use. A receiver
// without PushURL refuses every push.
func (r *Receiver) PushHandler() http.Handler { return http.HandlerFunc(r.servePush) }

func (r *Receiver) servePush(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writePushError(w, http.StatusMethodNotAllowed, "invalid_request", "SETs are delivered with POST")
		return
	}
	if r.cfg.PushURL == "" {
		writePushError(w, http.StatusBadRequest, "access_denied", "this receiver takes no pushed SETs")
		return
	}
	if subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), []byte(r.cfg.PushAuthorization)) != 1 {
		writePushError(w, http.StatusBadRequest, "authentication_failed", "the Authorization header is missing or wrong")
		return
	}
	if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mt != "application/secevent+jwt" {
		writePushError(w, http.StatusBadRequest, "invalid_request", "the Content-Type must be application/secevent+jwt")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxPushBody))
	if err != nil {
		writePushError(w, http.StatusBadRequest, "invalid_request", "the body is unreadable or too large")
		return
	}
	set, err := r.verify(req.Context(), strings.TrimSpace(string(body)))
	if err != nil {
		status, code, desc := pushErrorOf(err)
		if r.cfg.OnError != nil {
			r.cfg.OnError(fmt.Errorf("ssf: pushed SET refused (%s): %w", code, err))
		}
		writePushError(w, status, code, desc)
		return
	}
	r.accept(set)
	w.WriteHeader(http.StatusAccepted)
}

// accept applies a verified pushed SET, once per jti.
func (r *Receiver) accept(set *secevent.SET) {
	now := r.cfg.Now()
	r.lastContact.Store(now.UnixNano())
	_, at := eventTime(set)
	forget := r.dropAt(at)
	if !forget.After(now) {
		return // it can match no live token
	}
	r.push.mu.Lock()
	_, dup := r.push.seen[set.ID]
	if !dup {
		r.push.seen[set.ID] = forget
	}
	r.push.mu.Unlock()
	if !dup {
		r.applySET(set)
	}
}

// sweep forgets the SETs that could no longer be applied anyway.
func (p *pushState) sweep(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for jti, at := range p.seen {
		if !at.After(now) {
			delete(p.seen, jti)
		}
	}
}

// pushErrorOf maps a verification error to the answer of RFC 8935 §2.3.
// Keys that cannot be fetched are no fault of the SET: 503, so that the
// transmitter retries.
func pushErrorOf(err error) (status int, code, description string) {
	switch {
	case errors.Is(err, jose.ErrIssuer):
		return http.StatusBadRequest, "invalid_issuer", "the SET's iss is not the transmitter's issuer"
	case errors.Is(err, jose.ErrAudience):
		return http.StatusBadRequest, "invalid_audience", "the SET's aud does not name this receiver"
	case errors.Is(err, jose.ErrUnknownKey), errors.Is(err, jose.ErrSignature), errors.Is(err, jose.ErrAlgorithm):
		return http.StatusBadRequest, "invalid_key", "the SET's signature does not verify with the transmitter's keys"
	case errors.Is(err, jose.ErrInvalid), errors.Is(err, errMalformedSET):
		return http.StatusBadRequest, "invalid_request", "not a SET this receiver accepts: " + err.Error()
	}
	return http.StatusServiceUnavailable, "", "the transmitter's keys are unavailable; try again later"
}

// writePushError writes an error object of RFC 8935 §2.3; code is empty
// for an error that is not about the SET.
func writePushError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Err         string `json:"err,omitempty"`
		Description string `json:"description"`
	}{code, description})
}
