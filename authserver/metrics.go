package authserver

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// metrics are the server's Prometheus metrics. Every label has a bounded set
// of values: endpoints are the registered routes, grants the supported grant
// types, outcomes "ok" or an RFC 6749 error code.
type metrics struct {
	requests  *prometheus.CounterVec   // endpoint, grant, outcome
	duration  *prometheus.HistogramVec // endpoint, grant
	hash      prometheus.Histogram
	throttled prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "authserver", Name: "requests_total",
			Help: "Requests to the authorization server by endpoint, grant type (token endpoint only) and outcome.",
		}, []string{"endpoint", "grant", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "authserver", Name: "request_duration_seconds",
			Help:    "Time to answer a request, by endpoint and grant type (token endpoint only).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"endpoint", "grant"}),
		hash: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "authserver", Name: "password_hash_duration_seconds",
			Help:    "Time to verify a password with argon2id (not counting the wait for a hashing slot).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "authserver", Name: "logins_throttled_total",
			Help: "Logins refused without a password check because the username or address was locked.",
		}),
	}
	var err error
	m.requests = register(reg, m.requests, &err)
	m.duration = register(reg, m.duration, &err)
	m.hash = register(reg, m.hash, &err)
	m.throttled = register(reg, m.throttled, &err)
	return m, err
}

// register registers c, or returns the collector already registered under
// its name, so several servers can share one registry (as replicas in a test
// do).
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if err != nil && *errp == nil {
		*errp = err
	}
	return c
}

// timeHash starts timing a password hash; call the result when it is done.
func (m *metrics) timeHash() func() {
	start := time.Now()
	return func() { m.hash.Observe(time.Since(start).Seconds()) }
}

// observation collects what a request's handler learns for the metrics.
type observation struct {
	grant   string
	outcome string
}

type observationKey struct{}

// noteGrant records the grant type of a token request, mapped to a bounded
// set of label values.
func (s *Server) noteGrant(ctx context.Context, gt string) {
	if o, ok := ctx.Value(observationKey{}).(*observation); ok {
		switch {
		case gt == "":
			o.grant = "none"
		case s.grants[gt] != nil:
			o.grant = gt
		default:
			o.grant = "unsupported"
		}
	}
}

// noteOutcome records a request's result: "ok" or the OAuth error code.
func noteOutcome(ctx context.Context, err error) {
	o, ok := ctx.Value(observationKey{}).(*observation)
	if !ok {
		return
	}
	o.outcome = "ok"
	if err != nil {
		o.outcome = oauth.ErrServerError
		if e, ok := errors.AsType[*oauth.Error](err); ok && isOAuthCode(e.Code) {
			o.outcome = e.Code
		}
	}
}

func isOAuthCode(code string) bool {
	switch code {
	case oauth.ErrInvalidRequest, oauth.ErrInvalidClient, oauth.ErrInvalidGrant, oauth.ErrUnauthorizedClient,
		oauth.ErrUnsupportedGrantType, oauth.ErrInvalidScope, oauth.ErrAccessDenied, oauth.ErrServerError,
		oauth.ErrTemporarilyUnavailable, oauth.ErrInvalidToken, oauth.ErrInsufficientScope,
		oauth.ErrUnsupportedTokenType, oauth.ErrUnsupportedResponseType:
		return true
	}
	return false
}

// instrument counts and times every request h serves.
func (s *Server) instrument(h http.Handler) http.Handler {
	prefix := issuerPath(s.cfg.Issuer)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// Bound the body here, on the server's own ResponseWriter: past the
		// limit, http.MaxBytesReader tells the server to answer and close
		// the connection, which it cannot do through statusWriter. The
		// handlers' own, equal limits then see the same *MaxBytesError.
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		o := &observation{}
		r = r.WithContext(context.WithValue(r.Context(), observationKey{}, o))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		endpoint := endpointLabel(r.Pattern, prefix)
		outcome := o.outcome
		if outcome == "" {
			outcome = statusOutcome(sw.status)
		}
		s.metrics.requests.WithLabelValues(endpoint, o.grant, outcome).Inc()
		s.metrics.duration.WithLabelValues(endpoint, o.grant).Observe(time.Since(start).Seconds())
	})
}

// endpointLabel turns a ServeMux pattern ("GET /issuer-path/oauth2/jwks")
// into a label: the path without the method and the issuer's path
// ("/oauth2/jwks"), or "unmatched".
func endpointLabel(pattern, issuerPath string) string {
	if pattern == "" {
		return "unmatched"
	}
	if _, p, ok := strings.Cut(pattern, " "); ok {
		pattern = p
	}
	if issuerPath != "" {
		if p, ok := strings.CutPrefix(pattern, issuerPath); ok {
			pattern = p
		} else {
			pattern = strings.TrimSuffix(pattern, issuerPath)
		}
	}
	return pattern
}

func statusOutcome(status int) string {
	switch {
	case status < 400:
		return "ok"
	case status < 500:
		return "client_error"
	default:
		return oauth.ErrServerError
	}
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
