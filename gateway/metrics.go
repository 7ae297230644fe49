package gateway

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus metrics. Every label has a bounded set
// of values: route is a configured route's label (or "none"), auth one of the
// auth* constants, outcome one of the outcome* constants, cache one of the
// cache* constants.
type metrics struct {
	requests *prometheus.CounterVec   // route, auth, outcome
	cache    *prometheus.CounterVec   // cache, result
	upstream *prometheus.HistogramVec // route
}

// Values of the auth label: how a request authenticated.
const (
	authNone    = "none"    // no Authorization header and no session cookie
	authSession = "session" // no Authorization header, a browser-session cookie
	authBasic   = "basic"   // Basic credentials, exchanged for a token
	authBearer  = "bearer"  // a bearer JWT
	authOpaque  = "opaque"  // a bearer token that is not a JWT
	authOther   = "other"   // a scheme the gateway does not accept
)

// Values of the outcome label: what became of a request.
const (
	outcomeProxied         = "proxied"          // the upstream answered
	outcomeRetried         = "retried"          // the upstream refused the token; it answered the retry with a new one
	outcomeNoRoute         = "no_route"         // 404
	outcomeUnauthenticated = "unauthenticated"  // 401
	outcomeDenied          = "denied"           // 403
	outcomeRateLimited     = "rate_limited"     // 429
	outcomeTooLarge        = "too_large"        // 413
	outcomeAuthUnavailable = "auth_unavailable" // 503: the authorization server could not be asked
	outcomeUpstreamError   = "upstream_error"   // 502
	outcomeUpstreamTimeout = "upstream_timeout" // 504
	outcomeCanceled        = "canceled"         // the client went away before the upstream answered
	outcomeError           = "error"            // 500
)

// Values of the cache label.
const (
	cacheToken         = "token"         // the verified-token cache of JWTs
	cacheBasic         = "basic"         // Basic credential → token
	cacheIntrospection = "introspection" // opaque token → introspection answer
	cachePhantom       = "phantom"       // opaque token and route → phantom token
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "gateway", Name: "requests_total",
			Help: "Requests by route, authentication method and outcome.",
		}, []string{"route", "auth", "outcome"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "gateway", Name: "cache_lookups_total",
			Help: "Lookups in the gateway's caches (token, basic, introspection, phantom) by result (hit, miss).",
		}, []string{"cache", "result"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "gateway", Name: "upstream_duration_seconds",
			Help:    "Time from sending a request upstream to its response headers (or failure), by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
	}
	var err error
	m.requests = register(reg, m.requests, &err)
	m.cache = register(reg, m.cache, &err)
	m.upstream = register(reg, m.upstream, &err)
	return m, err
}

// register registers c, or returns the collector already registered under
// its name: a Gateway built on reload shares the metrics of the one it
// replaces.
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

// cacheHook returns a func counting the lookups of one cache, with its two
// counters resolved once.
func (m *metrics) cacheHook(cache string) func(hit bool) {
	hits, misses := m.cache.WithLabelValues(cache, "hit"), m.cache.WithLabelValues(cache, "miss")
	return func(hit bool) {
		if hit {
			hits.Inc()
		} else {
			misses.Inc()
		}
	}
}
