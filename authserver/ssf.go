package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// The transmitter of the OpenID Shared Signals Framework 1.0 (SSF).
//
// Receivers — Gatehouse's gateways and services, and any third-party SSF
// receiver — authenticate with an access token the client got for itself
// by client_credentials, for this server's audience (the issuer), carrying
// scope ScopeSSFManage (create, delete, verify and poll a stream) or
// ScopeSSFRead (read stream configuration only). A client has at most one
// stream, whose SETs are addressed to its client ID ("aud").
//
// Delivery is by push (RFC 8935, ssf_push.go) or by poll (RFC 8936). For
// poll, the transmitter keeps a stream's cursor, the highest event
// acknowledged, but the acknowledgements themselves carry it: a SET's jti is "<event ID>.<stream ID>", and a poll returns the events
// after the highest event ID acknowledged on the stream so far or in that
// very request. So a receiver that sends its last acknowledged jti again
// when it reconnects — to this replica, another, or one that restarted —
// resumes exactly where it left off. A receiver that acknowledges nothing
// gets every event still retained (Config.EventRetention): all it needs to
// learn of every revoked token that could still be used.
//
// Streams live in the memory of the replica that created them; a receiver
// polling a replica that does not know its stream gets 404 and creates it
// there again (Gatehouse's receivers do so on their own).

// OAuth scopes of the stream management API.
const (
	ScopeSSFManage = "ssf.manage"
	ScopeSSFRead   = "ssf.read"
)

// Paths of the SSF endpoints below the issuer.
const (
	pathSSFStreams = "/ssf/streams"
	pathSSFVerify  = "/ssf/verify"
	pathSSFPoll    = "/ssf/poll/"
	// pathSSFStatus is in ssf_status.go.
)

// deliveryPoll is the delivery method of RFC 8936 (SSF 1.0 §6.1.1).
const deliveryPoll = "urn:ietf:rfc:8936"

// Bounds that keep a receiver from costing the server without limit.
const (
	defaultPollEvents = 100 // SETs per poll response when maxEvents is absent
	maxPollEvents     = 1000
	maxLongPolls      = 1024 // long polls waiting at once, over all streams
	maxVerifications  = 8    // undelivered verification SETs per stream
	defaultLongPoll   = 25 * time.Second
)

// transmitter holds the streams of one Server and wakes long polls when
// events are appended. It is safe for concurrent use.
type transmitter struct {
	notifier store.EventNotifier // the store's, or nil
	wake     broadcast
	longPoll chan struct{} // semaphore: one token per waiting long poll
	maxWait  time.Duration // of one long poll

	push        pushConfig   // push delivery (ssf_push.go)
	pushStreams broadcast    // notified when a push stream is created
	metrics     *pushMetrics // of push delivery

	mu       sync.Mutex
	streams  map[string]*stream // by stream ID
	byClient map[string]*stream
}

// stream is one receiver's stream (SSF 1.0 §8.1.1).
type stream struct {
	id, clientID, description string
	requested, delivered      []string
	push                      *pushTarget        // nil for a poll stream
	stopPush                  context.CancelFunc // ends its pusher; guarded by transmitter.mu

	mu       sync.Mutex
	cursor   int64          // highest event ID acknowledged
	verifies []pendingCheck // verification events not yet acknowledged
	nextVer  int
	status   string // statusEnabled, statusPaused or statusDisabled (ssf_status.go)
	reason   string // of the status, if any
}

// pendingCheck is a verification event (SSF 1.0 §8.1.4) awaiting delivery.
type pendingCheck struct {
	jti   string
	state string
	at    time.Time
}

// setUpSSF creates the transmitter and serves its endpoints. It wraps the
// store so that every event appended through this server, the admin API's
// included, wakes the long polls at once.
func (s *Server) setUpSSF() error {
	m, err := newPushMetrics(s.cfg.Registerer)
	if err != nil {
		return fmt.Errorf("authserver: register ssf metrics: %w", err)
	}
	t := &transmitter{longPoll: make(chan struct{}, maxLongPolls), maxWait: defaultLongPoll,
		streams: map[string]*stream{}, byClient: map[string]*stream{}, metrics: m,
		push: pushConfig{pauseAfter: s.cfg.PushPauseAfter}}
	t.notifier, _ = s.cfg.Store.(store.EventNotifier)
	s.cfg.Store = notifyingStore{Store: s.cfg.Store, notify: t.wake.notify}
	s.ssf = t
	// Like discovery: the well-known segment before the issuer's path
	// (SSF 1.0 §7.2), and after it.
	s.mux.HandleFunc("GET /.well-known/ssf-configuration"+s.prefix, s.handleSSFConfiguration)
	if s.prefix != "" {
		s.mux.HandleFunc("GET "+s.prefix+"/.well-known/ssf-configuration", s.handleSSFConfiguration)
	}
	s.mux.HandleFunc("POST "+s.prefix+pathSSFStreams, s.ssfHandler(ScopeSSFManage, s.createStream))
	s.mux.HandleFunc("GET "+s.prefix+pathSSFStreams, s.ssfHandler(ScopeSSFRead, s.readStream))
	s.mux.HandleFunc("DELETE "+s.prefix+pathSSFStreams, s.ssfHandler(ScopeSSFManage, s.deleteStream))
	s.mux.HandleFunc("POST "+s.prefix+pathSSFVerify, s.ssfHandler(ScopeSSFManage, s.verifyStream))
	s.mux.HandleFunc("POST "+s.prefix+pathSSFPoll+"{stream}", s.ssfHandler(ScopeSSFManage, s.pollStream))
	s.mux.HandleFunc("GET "+s.prefix+pathSSFStatus, s.ssfHandler(ScopeSSFRead, s.readStatus))
	s.mux.HandleFunc("POST "+s.prefix+pathSSFStatus, s.ssfHandler(ScopeSSFManage, s.updateStatus))
	return nil
}

// notifyingStore calls notify after every event it appends.
type notifyingStore struct {
	store.Store
	notify func()
}

func (n notifyingStore) AppendEvent(ctx context.Context, e store.Event) (int64, error) {
	id, err := n.Store.AppendEvent(ctx, e)
	if err == nil {
		n.notify()
	}
	return id, err
}

// ssfConfiguration is the transmitter configuration metadata (SSF 1.0 §7.1).
type ssfConfiguration struct {
	SpecVersion           string              `json:"spec_version"`
	Issuer                string              `json:"issuer"`
	JWKSURI               string              `json:"jwks_uri"`
	DeliveryMethods       []string            `json:"delivery_methods_supported"`
	ConfigurationEndpoint string              `json:"configuration_endpoint"`
	StatusEndpoint        string              `json:"status_endpoint"`
	VerificationEndpoint  string              `json:"verification_endpoint"`
	AuthorizationSchemes  []map[string]string `json:"authorization_schemes"`
	DefaultSubjects       string              `json:"default_subjects"`
}

func (s *Server) handleSSFConfiguration(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSONCacheable(w, ssfConfiguration{
		SpecVersion: "1_0", Issuer: s.cfg.Issuer, JWKSURI: s.cfg.Issuer + pathJWKS,
		DeliveryMethods:       []string{deliveryPoll, deliveryPush},
		ConfigurationEndpoint: s.cfg.Issuer + pathSSFStreams,
		StatusEndpoint:        s.cfg.Issuer + pathSSFStatus,
		VerificationEndpoint:  s.cfg.Issuer + pathSSFVerify,
		AuthorizationSchemes:  []map[string]string{{"spec_urn": "urn:ietf:rfc:6749"}},
		DefaultSubjects:       "ALL",
	})
}

// ssfHandler authenticates the receiver, requires scope (ScopeSSFManage
// also grants ScopeSSFRead) and runs h, writing its error as JSON.
func (s *Server) ssfHandler(scope string, h func(w http.ResponseWriter, r *http.Request, c store.Client) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		c, scopes, err := s.serviceCaller(r.Context(), r, "use the shared signals stream API")
		if err == nil && !slices.Contains(scopes, scope) && !slices.Contains(scopes, ScopeSSFManage) {
			err = &oauth.Error{Code: "insufficient_scope", Status: http.StatusForbidden,
				Description: "the access token needs scope " + scope,
				Challenge:   oauth.BearerChallenge(pkiRealm, "insufficient_scope", "scope "+scope+" required")}
		}
		if err == nil {
			err = h(w, r, c)
		}
		if err != nil {
			oauth.WriteError(w, err)
		}
	}
}

// streamConfig is a stream's configuration (SSF 1.0 §8.1.1).
type streamConfig struct {
	StreamID        string         `json:"stream_id"`
	Issuer          string         `json:"iss"`
	Audience        string         `json:"aud"`
	EventsSupported []string       `json:"events_supported"`
	EventsRequested []string       `json:"events_requested"`
	EventsDelivered []string       `json:"events_delivered"`
	Delivery        streamDelivery `json:"delivery"`
	Description     string         `json:"description,omitempty"`
}

type streamDelivery struct {
	Method      string `json:"method"`
	EndpointURL string `json:"endpoint_url,omitempty"`
	// AuthorizationHeader is sent with every push (SSF 1.0 §8.1.1); it is
	// never read back.
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

func (s *Server) configOf(st *stream) streamConfig {
	return streamConfig{StreamID: st.id, Issuer: s.cfg.Issuer, Audience: st.clientID,
		EventsSupported: secevent.Supported, EventsRequested: nonNil(st.requested), EventsDelivered: nonNil(st.delivered),
		Delivery:    s.deliveryOf(st),
		Description: st.description}
}

func ssfError(status int, code, desc string) *oauth.Error {
	return &oauth.Error{Code: code, Description: desc, Status: status}
}

// createStream is SSF 1.0 §8.1.1.1.
func (s *Server) createStream(w http.ResponseWriter, r *http.Request, c store.Client) error {
	var req struct {
		Delivery        *streamDelivery `json:"delivery"`
		EventsRequested []string        `json:"events_requested"`
		Description     string          `json:"description"`
	}
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	push, err := pushTargetOf(req.Delivery)
	if err != nil {
		return err
	}
	st := &stream{id: keyring.RandomToken(16), clientID: c.ID, description: req.Description, requested: req.EventsRequested,
		push: push, status: statusEnabled}
	for _, e := range req.EventsRequested {
		if slices.Contains(secevent.Supported, e) && !slices.Contains(st.delivered, e) {
			st.delivered = append(st.delivered, e)
		}
	}
	t := s.ssf
	t.mu.Lock()
	if _, ok := t.byClient[c.ID]; ok {
		t.mu.Unlock()
		return ssfError(http.StatusConflict, "conflict", "the client has a stream already")
	}
	t.streams[st.id], t.byClient[c.ID] = st, st
	t.mu.Unlock()
	t.pushStreams.notify()
	s.audit(r.Context(), "ssf stream created", "client_id", c.ID, "stream_id", st.id, "events", st.delivered)
	oauth.WriteJSON(w, http.StatusCreated, s.configOf(st))
	return nil
}

// streamOf returns the caller's stream named by the stream_id query
// parameter; 404 for a stream of another client, as for none.
func (s *Server) streamOf(id string, c store.Client) (*stream, error) {
	s.ssf.mu.Lock()
	st := s.ssf.streams[id]
	s.ssf.mu.Unlock()
	if st == nil || st.clientID != c.ID {
		return nil, ssfError(http.StatusNotFound, "not_found", "no such stream")
	}
	return st, nil
}

// readStream is SSF 1.0 §8.1.1.2: one stream by stream_id, or the list of
// the caller's streams.
func (s *Server) readStream(w http.ResponseWriter, r *http.Request, c store.Client) error {
	id := r.URL.Query().Get("stream_id")
	if id == "" {
		s.ssf.mu.Lock()
		st := s.ssf.byClient[c.ID]
		s.ssf.mu.Unlock()
		list := []streamConfig{}
		if st != nil {
			list = append(list, s.configOf(st))
		}
		oauth.WriteJSON(w, http.StatusOK, list)
		return nil
	}
	st, err := s.streamOf(id, c)
	if err != nil {
		return err
	}
	oauth.WriteJSON(w, http.StatusOK, s.configOf(st))
	return nil
}

// deleteStream is SSF 1.0 §8.1.1.5.
func (s *Server) deleteStream(w http.ResponseWriter, r *http.Request, c store.Client) error {
	st, err := s.streamOf(r.URL.Query().Get("stream_id"), c)
	if err != nil {
		return err
	}
	s.ssf.mu.Lock()
	delete(s.ssf.streams, st.id)
	delete(s.ssf.byClient, st.clientID)
	st.stopPushing()
	s.ssf.mu.Unlock()
	s.audit(r.Context(), "ssf stream deleted", "client_id", c.ID, "stream_id", st.id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// verifyStream is SSF 1.0 §8.1.4.2: queue a verification event.
func (s *Server) verifyStream(w http.ResponseWriter, r *http.Request, c store.Client) error {
	var req struct {
		StreamID string `json:"stream_id"`
		State    string `json:"state"`
	}
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	st, err := s.streamOf(req.StreamID, c)
	if err != nil {
		return err
	}
	st.mu.Lock()
	if len(st.verifies) >= maxVerifications {
		st.mu.Unlock()
		return ssfError(http.StatusTooManyRequests, "too_many_requests", "acknowledge the pending verification events first")
	}
	st.nextVer++
	st.verifies = append(st.verifies, pendingCheck{jti: "v" + strconv.Itoa(st.nextVer) + "." + st.id, state: req.State, at: s.cfg.Now()})
	st.mu.Unlock()
	s.ssf.wake.notify()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readJSON decodes the request body, bounded by MaxBodyBytes, into v.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return ssfError(http.StatusRequestEntityTooLarge, oauth.ErrInvalidRequest, "request too large")
		}
		return ssfError(http.StatusBadRequest, oauth.ErrInvalidRequest, "the body must be a JSON object")
	}
	return nil
}

// signSET signs a SET with the current signing key.
func (s *Server) signSET(set secevent.SET) (string, error) {
	return jose.Sign(s.keys.signer(), jose.TypeSET, set)
}
