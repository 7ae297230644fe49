package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
)

// retryTransport carries cookie-session requests to an upstream and handles
// RFC 6749 §1.5 step F: when the upstream answers 401 with
// error="invalid_token" to a token the gateway verified (it expired on its
// way, or was revoked), the session is refreshed once and the request sent
// again with the new token, if it is idempotent and its body can be
// replayed. A request that cannot be retried gets the upstream's 401, with
// the renewed cookies, so that the client's own retry succeeds.
//
// Bodies up to SessionConfig.RetryBodyBytes are buffered before the first
// attempt; larger ones are streamed and their request is not retried.
// Requests authenticated by Basic or Bearer credentials pass through
// untouched: their token belongs to the client.
type retryTransport struct {
	next http.RoundTripper
	s    *sessions
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st := sessionFrom(req.Context())
	if st == nil || !st.authenticated || st.refreshed || st.refresh == "" {
		// A token refreshed in this request is as fresh as it gets: another
		// refresh would not help, and would cost a grant per request.
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
	res, rerr := t.s.refreshSession(req.Context(), st.refresh)
	switch {
	case errors.Is(rerr, errSessionEnded):
		st.w.set(t.s.clearCookies(st.names)...)
		return resp, nil
	case rerr != nil:
		t.s.cfg.Logger.WarnContext(req.Context(), "refresh after upstream 401", "err", rerr)
		return resp, nil
	}
	t.s.renewed(st, res)
	if !replayable {
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	retry := req.Clone(req.Context())
	retry.Header.Set("Authorization", "Bearer "+res.access)
	if body != nil {
		retry = withBody(retry, body)
	}
	return t.next.RoundTrip(retry)
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
	limit := t.s.sc.RetryBodyBytes
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
