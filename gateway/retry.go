package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/resource"
)

// retryTransport carries the requests of one route to its upstream and
// handles RFC 6749 §1.5 step F: the upstream answers 401 with
// error="invalid_token" to a token the gateway verified — it expired on its
// way, or it was revoked and the service learned of it before the gateway
// did. The gateway then gets a new token for the same caller, once, and
// sends an idempotent request whose body it could keep again:
//
//   - cookie sessions refresh the session; the renewed cookies go to the
//     client also when the request is not retried, so that its own retry
//     succeeds. A refresh that fails passes the upstream's 401 on (with the
//     cookies cleared if the session ended);
//   - Basic credentials drop the cached token the upstream refused and
//     make a new password grant; a request that is not retried only drops
//     it, so the client's next request makes the grant. A grant that fails
//     is answered as the gateway answers it on the way in (401
//     invalid_grant for a password that changed, 503 when the authorization
//     server cannot be asked). A token that the upstream refused in a retry
//     too, or — for a request that is not retried — that replaced a
//     refused one, is not replaced again within retryGrantInterval: an
//     upstream that refuses every token costs at most about one grant per
//     credential per interval.
//
// The renewed caller is checked against the route's rule again — its roles
// may be what changed — and its token turned into a phantom token if it is
// opaque, as on the way in. Bodies up to SessionConfig.RetryBodyBytes are
// buffered before the first attempt; larger ones are streamed and their
// request is not retried. Requests authenticated by a bearer token pass
// through untouched: the token belongs to the client.
type retryTransport struct {
	next http.RoundTripper
	g    *Gateway
	rt   *route
}

// retryGrantInterval: a cached Basic token that an upstream refused in a
// retry is not replaced by another retry sooner than this.
const retryGrantInterval = time.Second

// basicRequest is a Basic-authenticated request on its way upstream: what
// a retry needs for a new password grant. It travels in the request's
// context.
type basicRequest struct {
	user, pass, endUserIP string
	token                 string // the cached access token, before any phantom stands in for it
	rule                  Rule   // the rule that admitted the caller
	retried               bool   // set by the transport
}

type basicRequestKey struct{}

func basicRequestFrom(ctx context.Context) *basicRequest {
	b, _ := ctx.Value(basicRequestKey{}).(*basicRequest)
	return b
}

// errPassOn: the retry gave up; the upstream's answer goes to the client.
var errPassOn = errors.New("gateway: no retry")

// retryError ends a request whose retry the gateway answers itself: with
// the error of the grant (Gateway.unauthorized), or a denial when the
// renewed caller is no longer admitted (Gateway.deny).
type retryError struct {
	err  error
	deny string
}

func (e *retryError) Error() string {
	if e.deny != "" {
		return "gateway: retry denied: " + e.deny
	}
	return "gateway: retry: " + e.err.Error()
}

func (e *retryError) Unwrap() error { return e.err }

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	st, br := sessionFrom(ctx), basicRequestFrom(ctx)
	// A session token refreshed in this request is as fresh as it gets:
	// another refresh would not help, and would cost a grant per request.
	sessionRetry := st != nil && st.authenticated && !st.refreshed && st.refresh != ""
	if !sessionRetry && br == nil {
		return t.next.RoundTrip(req)
	}
	body, replayable, err := t.buffer(req)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req = withBody(req, body)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !invalidTokenChallenge(resp.Header) {
		return resp, err
	}
	var p *resource.Principal
	var token string
	var rule Rule
	if sessionRetry {
		p, token, err = t.renewSession(ctx, st)
		rule = st.rule
	} else {
		p, token, err = t.renewBasic(ctx, br, replayable)
		rule = br.rule
	}
	if errors.Is(err, errPassOn) || err == nil && !replayable {
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return nil, &retryError{err: err}
	}
	if reason := rule.deny(p); reason != "" {
		return nil, &retryError{deny: reason}
	}
	forward, err := t.g.forwardToken(t.rt, p, token)
	if err != nil {
		return nil, &retryError{err: err}
	}
	retry := req.Clone(ctx)
	retry.Header.Set("Authorization", "Bearer "+forward)
	if body != nil {
		retry = withBody(retry, body)
	}
	if sessionRetry {
		st.retried = true
		return t.next.RoundTrip(retry)
	}
	br.retried = true
	resp, err = t.next.RoundTrip(retry)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && invalidTokenChallenge(resp.Header) {
		t.g.basic.refusedInRetry(br.user, br.pass, token)
	}
	return resp, err
}

// renewSession refreshes the session after the upstream refused its token.
// A refresh that fails ends in errPassOn, with the cookies cleared if the
// session ended.
func (t *retryTransport) renewSession(ctx context.Context, st *session) (*resource.Principal, string, error) {
	s := t.g.sessions
	res, err := s.refreshSession(ctx, st.refresh)
	switch {
	case errors.Is(err, errSessionEnded):
		st.w.set(s.clearCookies(st.names)...)
		return nil, "", errPassOn
	case err != nil:
		s.cfg.Logger.WarnContext(ctx, "refresh after upstream 401", "err", err)
		return nil, "", errPassOn
	}
	s.renewed(st, res)
	return res.principal, res.access, nil
}

// renewBasic drops the cached token the upstream refused for the
// credential and, if the request can be sent again, makes a new password
// grant.
func (t *retryTransport) renewBasic(ctx context.Context, br *basicRequest, replayable bool) (*resource.Principal, string, error) {
	b := t.g.basic
	if !b.drop(br.user, br.pass, br.token, replayable) || !replayable {
		return nil, "", errPassOn
	}
	p, token, err := b.authenticate(ctx, br.user, br.pass, br.endUserIP)
	if err == nil && token == br.token {
		return nil, "", errPassOn
	}
	return p, token, err
}

// buffer reads the body of an idempotent request when it is small enough to
// send twice. It returns the body when it read it (also when it proved too
// large: then the returned reader holds what was read followed by the rest),
// and whether the request may be retried.
func (t *retryTransport) buffer(req *http.Request) (io.Reader, bool, error) {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
	default:
		return nil, false, nil
	}
	if req.Body == nil || req.Body == http.NoBody {
		return nil, true, nil
	}
	limit := t.g.cfg.Session.RetryBodyBytes
	if limit < 0 || req.ContentLength > limit {
		return nil, false, nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > limit {
		return io.MultiReader(bytes.NewReader(b), req.Body), false, nil
	}
	return bytes.NewReader(b), true, nil
}

// withBody returns a shallow copy of req that sends body; a *bytes.Reader
// body can be sent again.
func withBody(req *http.Request, body io.Reader) *http.Request {
	r := req.WithContext(req.Context())
	if br, ok := body.(*bytes.Reader); ok {
		data := make([]byte, br.Len())
		br.ReadAt(data, 0)
		r.Body = io.NopCloser(bytes.NewReader(data))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		r.ContentLength = int64(len(data))
		return r
	}
	r.Body = io.NopCloser(body)
	return r
}

// invalidTokenChallenge reports whether a WWW-Authenticate header of h
// carries error="invalid_token" (RFC 6750 §3.1).
func invalidTokenChallenge(h http.Header) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		v = strings.ToLower(v)
		if strings.Contains(v, `error="invalid_token"`) || strings.Contains(v, "error=invalid_token") {
			return true
		}
	}
	return false
}
