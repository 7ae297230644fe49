package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// errUpstreamTimeout: the upstream sent no response headers within the
// route's timeout.
var errUpstreamTimeout = errors.New("gateway: upstream did not answer in time")

// upstreamTransport carries a route's requests: it bounds the wait for the
// response headers (not for the body, which may stream for long) and
// records that wait in the upstream latency histogram.
type upstreamTransport struct {
	base http.RoundTripper
	// timeout, if not zero, is enforced here with a timer per request;
	// zero means base enforces it (an *http.Transport with
	// ResponseHeaderTimeout, see headerTimeout).
	timeout time.Duration
	latency prometheus.Observer
}

// transportKey identifies a clone of an *http.Transport with a response
// header timeout.
type transportKey struct {
	base    *http.Transport
	timeout time.Duration
}

// routeTransport returns the transport of a route: base, its wait for
// response headers bounded by timeout. An *http.Transport is cloned with
// ResponseHeaderTimeout set — one clone per timeout, shared by the routes
// that use it — which costs nothing per request; any other RoundTripper
// gets a timer per request. clones is only used while New runs.
func routeTransport(base http.RoundTripper, timeout time.Duration, latency prometheus.Observer,
	clones map[transportKey]*http.Transport) *upstreamTransport {
	t, ok := base.(*http.Transport)
	if !ok {
		return &upstreamTransport{base: base, timeout: timeout, latency: latency}
	}
	key := transportKey{t, timeout}
	if clones[key] == nil {
		c := t.Clone()
		c.ResponseHeaderTimeout = timeout
		clones[key] = c
	}
	return &upstreamTransport{base: clones[key], latency: latency}
}

func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.timeout == 0 {
		start := time.Now()
		resp, err := t.base.RoundTrip(req)
		t.latency.Observe(time.Since(start).Seconds())
		return resp, err
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(t.timeout, func() { cancel(errUpstreamTimeout) })
	start := time.Now()
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	t.latency.Observe(time.Since(start).Seconds())
	if !timer.Stop() { // it fired: the request was canceled, or is about to be
		if err == nil {
			resp.Body.Close()
		}
		cancel(errUpstreamTimeout)
		return nil, errUpstreamTimeout
	}
	if err != nil {
		cancel(err)
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The body is the upgraded connection, which ReverseProxy needs as
		// it is; ctx ends with the request.
		return resp, nil
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose releases the request's context once its body is done.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(context.Canceled)
	return err
}

// proxyError answers a request the upstream did not: 504 when it timed out,
// 413 when the client's body exceeded MaxBodyBytes, else 502 — with a JSON
// body that names no upstream.
func (g *Gateway) proxyError(rt *route) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, req *http.Request, err error) {
		if re, ok := errors.AsType[*retryError](err); ok { // retry.go
			if re.deny != "" {
				g.deny(w, req, re.deny)
			} else {
				g.unauthorized(w, req, re.err)
			}
			return
		}
		outcome, status, code, desc := outcomeUpstreamError, http.StatusBadGateway, "bad_gateway", "upstream request failed"
		_, tooLarge := errors.AsType[*http.MaxBytesError](err)
		switch {
		case errors.Is(err, errUpstreamTimeout) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			outcome, status, code = outcomeUpstreamTimeout, http.StatusGatewayTimeout, "gateway_timeout"
		case tooLarge:
			outcome, status, code, desc = outcomeTooLarge, http.StatusRequestEntityTooLarge, "request_too_large", "request body too large"
		case req.Context().Err() != nil:
			outcome = outcomeCanceled // the client went away; nobody reads the answer
		}
		if x, ok := w.(*exchange); ok {
			x.outcome = outcome
		}
		g.cfg.Logger.WarnContext(req.Context(), "upstream failed", "route", rt.name, "outcome", outcome, "err", err)
		writeError(w, &oauth.Error{Code: code, Description: desc, Status: status})
	}
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}
