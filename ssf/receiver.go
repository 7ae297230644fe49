package ssf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// TokenSource supplies the receiver's access token: a client_credentials
// token for the issuer's audience with scope "ssf.manage".
// *outbound.ClientCredentials implements it.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Config configures a Receiver. Issuer, Audience and Token are required.
type Config struct {
	// Issuer is the transmitter's issuer; its /.well-known/ssf-configuration
	// is read, and SETs must carry it in "iss".
	Issuer string
	// Audience is the receiver's client ID, which the transmitter puts in
	// its SETs' "aud".
	Audience string
	// Token authenticates the receiver to the stream management API.
	Token TokenSource
	// Keys verify the SETs; if nil, the JWKS named by jwks_uri in the
	// transmitter's configuration (SSF 1.0 §7.1), fetched and cached as a
	// resource.Verifier does (resource.RemoteKeySet).
	Keys jose.Keys
	// MaxTokenLifetime is the longest lifetime of an access token the
	// issuer mints: an entry is dropped that long (plus a minute of clock
	// leeway) after its event. If zero, 1h.
	MaxTokenLifetime time.Duration
	// StaleAfter is how long the stream may go unanswered before the
	// receiver counts as stale: OnStale is called and, if FailClosed,
	// Check refuses every token. If zero, 1m.
	StaleAfter time.Duration
	// FailClosed refuses every token with resource.ErrRevocationsUnavailable
	// while the receiver is stale. If false (the default) tokens are
	// accepted on the revocations known so far: availability over a
	// revocation that may be missed while the stream is down.
	FailClosed bool
	// OnStale, if set, is called (from Run's goroutine) when the receiver
	// turns stale and when it recovers: for a log line and a metric.
	OnStale func(stale bool, lastContact time.Time)
	// OnError, if set, receives the errors Run retries after, and the
	// reasons PushHandler refuses an authenticated push.
	OnError func(error)
	// OnEvent, if set, is called once for every SET applied, with its jti
	// and event type; not for verification events.
	OnEvent func(jti, eventType string)
	// PushURL, if set, makes the receiver ask for push delivery (RFC 8935)
	// to this URL instead of polling (RFC 8936); serve PushHandler there.
	// Gatehouse's transmitter requires https, or http on a loopback host.
	// See push.go.
	PushURL string
	// PushAuthorization is the Authorization header value the transmitter
	// must send with every push; the receiver registers it with its
	// stream. If empty, New generates a bearer secret of 256 random bits,
	// which is all a receiver needs: it registers a new stream every time
	// it starts.
	PushAuthorization string
	// CheckInterval is how often a push receiver reads its stream's status
	// — creating the stream again if the transmitter lost it, enabling it
	// if it was paused — and asks for a verification event, whose arrival
	// proves that pushes reach it. If zero, a third of StaleAfter, at most
	// 30s.
	CheckInterval time.Duration
	// HTTPClient calls the transmitter; if nil, a client with a 60s timeout
	// (longer than the transmitter holds a long poll).
	HTTPClient *http.Client
	// Now is the clock; if nil, time.Now.
	Now func() time.Time
}

// Receiver follows one transmitter's stream into a Denylist. Start Run once;
// Check is safe for concurrent use.
type Receiver struct {
	cfg  Config
	list Denylist

	keys        jose.Keys
	jwks        *jwksFromMetadata // keys, when Config.Keys is nil
	stale       atomic.Bool
	lastContact atomic.Int64 // unix nanoseconds of the last answered poll or accepted push
	lastSweep   time.Time    // used by Run's goroutine only

	mu      sync.Mutex
	pollURL string   // the stream's poll endpoint, "" until one exists
	acks    []string // SETs applied since the last answered poll
	last    string   // the applied SET of the highest event ID
	lastID  int64

	push pushState // push delivery (push.go)
}

// New returns a Receiver for cfg. It does no I/O.
func New(cfg Config) (*Receiver, error) {
	if cfg.Issuer == "" || cfg.Audience == "" || cfg.Token == nil {
		return nil, errors.New("ssf: Config needs Issuer, Audience and Token")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if cfg.MaxTokenLifetime <= 0 {
		cfg.MaxTokenLifetime = time.Hour
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = time.Minute
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = min(cfg.StaleAfter/3, 30*time.Second)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := setUpPush(&cfg); err != nil {
		return nil, err
	}
	r := &Receiver{cfg: cfg, keys: cfg.Keys, lastSweep: cfg.Now()}
	if r.keys == nil {
		r.jwks = &jwksFromMetadata{issuer: cfg.Issuer, client: cfg.HTTPClient, meta: r.metadata}
		r.keys = r.jwks
	}
	r.lastContact.Store(cfg.Now().UnixNano())
	r.push.seen = map[string]time.Time{}
	return r, nil
}

// Denylist returns the receiver's denylist.
func (r *Receiver) Denylist() *Denylist { return &r.list }

// Check implements resource.Revocations.
func (r *Receiver) Check(p *resource.Principal) error {
	if r.list.Revoked(p) {
		return resource.ErrRevoked
	}
	if r.cfg.FailClosed && r.stale.Load() {
		return resource.ErrRevocationsUnavailable
	}
	return nil
}

// Run follows the stream until ctx is done, creating it if needed, and
// returns ctx's error. Failures are passed to OnError and retried with a
// backoff of up to 5s. A push receiver (Config.PushURL) runs runPush
// instead.
func (r *Receiver) Run(ctx context.Context) error {
	if r.cfg.PushURL != "" {
		return r.runPush(ctx)
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := r.pollOnce(ctx)
		r.checkStale()
		r.sweep()
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if r.cfg.OnError != nil {
			r.cfg.OnError(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return ctx.Err()
}

// sweep drops expired entries from the denylist and from the push
// receiver's record of applied SETs, once a minute. Only Run's goroutine
// calls it.
func (r *Receiver) sweep() {
	now := r.cfg.Now()
	if now.Sub(r.lastSweep) < time.Minute {
		return
	}
	r.lastSweep = now
	r.list.Sweep(now)
	r.push.sweep(now)
}

func (r *Receiver) checkStale() {
	last := time.Unix(0, r.lastContact.Load())
	stale := r.cfg.Now().Sub(last) > r.cfg.StaleAfter
	if r.stale.Swap(stale) != stale && r.cfg.OnStale != nil {
		r.cfg.OnStale(stale, last)
	}
}

// errNoStream: the transmitter does not know the stream (any more).
var errNoStream = errors.New("ssf: stream not found")

// pollOnce makes one long poll, applies what it returns and records the
// acknowledgements for the next.
func (r *Receiver) pollOnce(ctx context.Context) error {
	r.mu.Lock()
	pollURL := r.pollURL
	acks := append([]string(nil), r.acks...)
	if r.last != "" && !contains(acks, r.last) {
		acks = append(acks, r.last)
	}
	r.mu.Unlock()
	if pollURL == "" {
		u, err := r.stream(ctx)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.pollURL, pollURL = u, u
		r.mu.Unlock()
	}
	var resp struct {
		Sets map[string]string `json:"sets"`
	}
	err := r.call(ctx, http.MethodPost, pollURL, map[string]any{"ack": acks, "maxEvents": 500}, http.StatusOK, &resp)
	if errors.Is(err, errNoStream) {
		r.mu.Lock()
		r.pollURL = ""
		r.mu.Unlock()
	}
	if err != nil {
		return err
	}
	r.lastContact.Store(r.cfg.Now().UnixNano())
	r.mu.Lock()
	r.acks = r.acks[:0]
	r.mu.Unlock()
	return r.applyAll(ctx, resp.Sets)
}

// applyAll verifies and applies the SETs in event order.
func (r *Receiver) applyAll(ctx context.Context, sets map[string]string) error {
	jtis := make([]string, 0, len(sets))
	for jti := range sets {
		jtis = append(jtis, jti)
	}
	sort.Slice(jtis, func(i, j int) bool { return eventID(jtis[i]) < eventID(jtis[j]) })
	var errs []error
	for _, jti := range jtis {
		if err := r.apply(ctx, jti, sets[jti]); err != nil {
			// Not acknowledged: the transmitter sends it again.
			errs = append(errs, fmt.Errorf("SET %s: %w", jti, err))
			continue
		}
		r.mu.Lock()
		r.acks = append(r.acks, jti)
		if id := eventID(jti); id > r.lastID {
			r.lastID, r.last = id, jti
		}
		r.mu.Unlock()
	}
	return errors.Join(errs...)
}

// eventID is the event ID a Gatehouse transmitter puts before the dot of a
// jti; 0 for other jtis.
func eventID(jti string) int64 {
	n, _, _ := strings.Cut(jti, ".")
	id, _ := strconv.ParseInt(n, 10, 64)
	return id
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// apply verifies one polled SET and records what it revokes.
func (r *Receiver) apply(ctx context.Context, jti, raw string) error {
	set, err := r.verify(ctx, raw)
	if err != nil {
		return err
	}
	if set.ID != jti {
		return fmt.Errorf("%w: jti %q under key %q", errMalformedSET, set.ID, jti)
	}
	r.applySET(set)
	return nil
}

// errMalformedSET: a SET with a good signature whose claims are not those
// of a SET this receiver can apply.
var errMalformedSET = errors.New("ssf: malformed SET")

// verify checks raw as a SET of the transmitter for this receiver (RFC 8417
// §2, with "iss", "aud", "iat" not in the future, and the "typ" header) and
// returns its claims. It needs "jti", "iat" and exactly one event.
func (r *Receiver) verify(ctx context.Context, raw string) (*secevent.SET, error) {
	c, err := jose.VerifySET(ctx, raw, r.keys, jose.Expect{Issuer: r.cfg.Issuer, Audience: []string{r.cfg.Audience}, Now: r.cfg.Now()})
	if err != nil {
		return nil, err
	}
	var set secevent.SET
	switch {
	case json.Unmarshal(c.Raw, &set) != nil:
		return nil, fmt.Errorf("%w: claims", errMalformedSET)
	case set.ID == "" || set.IssuedAt == 0:
		return nil, fmt.Errorf("%w: no jti or iat", errMalformedSET)
	case len(set.Events) != 1:
		return nil, fmt.Errorf("%w: %d events, want 1", errMalformedSET, len(set.Events))
	}
	return &set, nil
}

// eventTime is the time of set's event: its event_timestamp (CAEP §2), or
// else the SET's iat.
func eventTime(set *secevent.SET) (typ string, at time.Time) {
	for t, body := range set.Events {
		var ev secevent.EventPayload
		json.Unmarshal(body, &ev)
		typ, at = t, time.Unix(ev.EventTimestamp, 0)
		if ev.EventTimestamp == 0 {
			at = time.Unix(set.IssuedAt, 0)
		}
	}
	return typ, at
}

// dropAt is when what an event at at revokes can match no live token.
func (r *Receiver) dropAt(at time.Time) time.Time {
	return at.Add(r.cfg.MaxTokenLifetime + time.Minute)
}

// applySET records what a verified SET revokes.
func (r *Receiver) applySET(set *secevent.SET) {
	typ, at := eventTime(set)
	r.revoke(typ, set.Subject, at, r.dropAt(at))
	if r.cfg.OnEvent != nil && typ != secevent.Verification {
		r.cfg.OnEvent(set.ID, typ)
	}
}

// revoke records event typ about sub at time at.
func (r *Receiver) revoke(typ string, sub *secevent.SubjectID, at, dropAt time.Time) {
	if sub == nil {
		return
	}
	user, session, client := sub.User, sub.Session, sub.Application
	if sub.Format != secevent.FormatComplex {
		user = sub
	}
	userID := ""
	if user != nil && user.Format == secevent.FormatIssSub && user.Iss == r.cfg.Issuer {
		userID = user.Sub
	}
	switch typ {
	case secevent.TokenRevoked:
		if sub.Format == secevent.FormatOpaque {
			r.list.RevokeToken(sub.ID, dropAt)
		}
	case secevent.KeyRetired:
		if sub.Format == secevent.FormatOpaque {
			r.list.RevokeKey(sub.ID, dropAt)
		}
	case secevent.SessionRevoked:
		if session != nil && session.Format == secevent.FormatOpaque {
			r.list.RevokeSession(session.ID, dropAt)
		} else if userID != "" { // every session of the user
			r.list.RevokeSubject(userID, at, dropAt)
		}
	case secevent.CredentialChange, secevent.TokenClaimsChange, secevent.AccountDisabled, secevent.ClientDisabled:
		if userID != "" && typ != secevent.ClientDisabled {
			r.list.RevokeSubject(userID, at, dropAt)
		}
		if client != nil && client.Format == secevent.FormatOpaque && (typ == secevent.ClientDisabled || userID == "") {
			r.list.RevokeClient(client.ID, at, dropAt)
		}
	}
}

// transmitterMeta is what the receiver reads of the transmitter's
// configuration (SSF 1.0 §7.1).
type transmitterMeta struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	ConfigurationEndpoint string `json:"configuration_endpoint"`
	StatusEndpoint        string `json:"status_endpoint"`
	VerificationEndpoint  string `json:"verification_endpoint"`
}

// metadata reads the transmitter's configuration, and points the keys at
// its jwks_uri.
func (r *Receiver) metadata(ctx context.Context) (transmitterMeta, error) {
	var meta transmitterMeta
	if err := r.call(ctx, http.MethodGet, strings.TrimSuffix(r.cfg.Issuer, "/")+"/.well-known/ssf-configuration", nil, http.StatusOK, &meta); err != nil {
		return meta, err
	}
	if meta.Issuer != r.cfg.Issuer || meta.ConfigurationEndpoint == "" {
		return meta, fmt.Errorf("ssf: configuration of %q names issuer %q", r.cfg.Issuer, meta.Issuer)
	}
	if r.jwks != nil {
		r.jwks.use(meta.JWKSURI)
	}
	return meta, nil
}

// streamConfig is what the receiver reads of a stream's configuration
// (SSF 1.0 §8.1.1).
type streamConfig struct {
	StreamID string `json:"stream_id"`
	Delivery struct {
		Method      string `json:"method"`
		EndpointURL string `json:"endpoint_url"`
	} `json:"delivery"`
}

// stream returns the poll URL of the receiver's stream, creating the
// stream if it has none. A push stream of the client (a receiver that
// delivered by push before) is deleted first: a client has one stream.
func (r *Receiver) stream(ctx context.Context) (string, error) {
	meta, err := r.metadata(ctx)
	if err != nil {
		return "", err
	}
	var streams []streamConfig
	if err := r.call(ctx, http.MethodGet, meta.ConfigurationEndpoint, nil, http.StatusOK, &streams); err != nil {
		return "", err
	}
	for _, s := range streams {
		if s.Delivery.Method == deliveryPoll && s.Delivery.EndpointURL != "" {
			return s.Delivery.EndpointURL, nil
		}
		if err := r.deleteStream(ctx, meta, s.StreamID); err != nil {
			return "", err
		}
	}
	var created streamConfig
	err = r.call(ctx, http.MethodPost, meta.ConfigurationEndpoint, map[string]any{
		"delivery": map[string]string{"method": deliveryPoll}, "events_requested": secevent.Supported,
		"description": "gatehouse receiver"}, http.StatusCreated, &created)
	if err != nil {
		return "", err
	}
	return created.Delivery.EndpointURL, nil
}

// deleteStream deletes the stream id (SSF 1.0 §8.1.1.5); one already gone
// is no error.
func (r *Receiver) deleteStream(ctx context.Context, meta transmitterMeta, id string) error {
	err := r.call(ctx, http.MethodDelete, meta.ConfigurationEndpoint+"?stream_id="+url.QueryEscape(id), nil, http.StatusNoContent, nil)
	if errors.Is(err, errNoStream) {
		return nil
	}
	return err
}

// Delivery methods (SSF 1.0 §6.1.1).
const (
	deliveryPoll = "urn:ietf:rfc:8936"
	deliveryPush = "urn:ietf:rfc:8935"
)

// call sends a JSON request with the receiver's token and decodes the
// answer into out, if not nil, if its status is want.
func (r *Receiver) call(ctx context.Context, method, url string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !strings.Contains(url, "/.well-known/") {
		tok, err := r.cfg.Token.Token(ctx)
		if err != nil {
			return fmt.Errorf("ssf: token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := r.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("ssf: %s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("ssf: %s %s: %w", method, url, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %s %s", errNoStream, method, url)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("ssf: %s %s: HTTP %d: %.200s", method, url, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("ssf: %s %s: %w", method, url, err)
	}
	return nil
}

var _ resource.Revocations = (*Receiver)(nil)
