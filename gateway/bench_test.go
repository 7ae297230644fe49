package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// The gateway's request path against its baseline, a plain
// httputil.ReverseProxy, each request served in process (the client's side
// of the network is not measured). Each benchmark has two sub-benchmarks,
// one per upstream, shared by all of them:
//
//   - loopback: a real upstream on 127.0.0.1, through one shared
//     NewTransport — the realistic figure, noisy where cores are shared;
//   - memory: a RoundTripper answering from memory — no network, so the
//     difference to BenchmarkReverseProxy/memory is the gateway's own cost:
//     route match, rule, authentication (from cache when warm), rate
//     limiter, header stripping, upstream timeout, metrics.
//
// Run them in one go:
//
//	go test -run '^$' -bench 'ReverseProxy|Gateway' -count 6 ./gateway/
//
// Besides ns/op they report cpu-ns/op, the process's CPU time per request,
// which, unlike wall time, waiting for a busy shared core does not inflate.
// The memory sub-benchmarks go through the gateway's per-request timer (the
// path of RoundTrippers other than *http.Transport); loopback uses the
// transport's ResponseHeaderTimeout, the default.

const benchBody = `{"id":"7","item":"pizza","quantity":2}`

// benchUpstreams are the upstreams every proxy benchmark shares: the URL to
// forward to and the transport to use, by sub-benchmark name.
var benchUpstreams = sync.OnceValue(func() map[string]struct {
	url       *url.URL
	transport http.RoundTripper
} {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, benchBody)
	})) // lives as long as the test binary
	loopback, _ := url.Parse(srv.URL)
	memory, _ := url.Parse("http://upstream.invalid")
	return map[string]struct {
		url       *url.URL
		transport http.RoundTripper
	}{
		"loopback": {loopback, NewTransport()},
		"memory":   {memory, memoryTransport{}},
	}
})

// memoryTransport answers every request with benchBody, without a network.
type memoryTransport struct{}

func (memoryTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, ContentLength: int64(len(benchBody)),
		Body: io.NopCloser(strings.NewReader(benchBody)), Request: r}, nil
}

// eachUpstream runs bench against each shared upstream.
func eachUpstream(b *testing.B, bench func(b *testing.B, u *url.URL, transport http.RoundTripper)) {
	for _, name := range []string{"loopback", "memory"} {
		up := benchUpstreams()[name]
		b.Run(name, func(b *testing.B) { bench(b, up.url, up.transport) })
	}
}

func benchmarkHandler(b *testing.B, h http.Handler, path, authorization string) {
	// A cancelable context, as net/http's server gives every request: the
	// transport watches it, for the baseline as for the gateway.
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	serveOnce := func() {
		w := httptest.NewRecorder()
		req := r.Clone(r.Context())
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("got %d %s, want 200", w.Code, w.Body)
		}
	}
	serveOnce() // warm the caches and the connection pool
	b.ReportAllocs()
	n, cpu0 := 0, cpuTime()
	for b.Loop() {
		serveOnce()
		n++
	}
	if cpu := cpuTime() - cpu0; cpu > 0 {
		// CPU time of the whole process (loopback: the upstream's too) per
		// request: unlike ns/op, not inflated by waiting for a shared core.
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/op")
	}
}

// BenchmarkReverseProxy is the baseline: what any reverse proxy costs, with
// the gateway's transport and buffer pool, forwarding the same request as
// BenchmarkGatewayBearer — a bearer JWT included, which the upstream has to
// read either way.
func BenchmarkReverseProxy(b *testing.B) {
	eachUpstream(b, func(b *testing.B, u *url.URL, transport http.RoundTripper) {
		proxy := &httputil.ReverseProxy{
			Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
			Transport:  transport,
			BufferPool: proxyBuffers,
		}
		benchmarkHandler(b, proxy, "/api/orders/7", "Bearer "+newFixture(b).mintFor(b, "alice"))
	})
}

// benchGateway is the fixture's gateway in front of upstream u.
func benchGateway(b *testing.B, u *url.URL, transport http.RoundTripper, mod ...func(*Config)) (*fixture, *Gateway) {
	fx := newFixture(b)
	g := fx.gateway(b, []Route{
		{Prefix: "/api/admin", Upstream: u.String(), Rules: []Rule{{Roles: []string{"admin"}}}},
		{Pattern: "GET /api/orders/{id}", Upstream: u.String(), Rules: []Rule{{Roles: []string{"consumer"}, Scopes: []string{"orders"}}}},
		{Prefix: "/api/orders", Upstream: u.String()},
	}, append([]func(*Config){func(c *Config) { c.Transport = transport }}, mod...)...)
	return fx, g
}

// BenchmarkGatewayBearer: a Bearer JWT with the verified-token cache warm,
// through a pattern route with a role and a scope rule.
func BenchmarkGatewayBearer(b *testing.B) {
	eachUpstream(b, func(b *testing.B, u *url.URL, transport http.RoundTripper) {
		fx, g := benchGateway(b, u, transport)
		benchmarkHandler(b, g, "/api/orders/7", "Bearer "+fx.mintFor(b, "alice"))
	})
}

// BenchmarkGatewayBearerObserved is BenchmarkGatewayBearer with a JSON
// access log (to io.Discard) and a rate limit that never refuses.
func BenchmarkGatewayBearerObserved(b *testing.B) {
	eachUpstream(b, func(b *testing.B, u *url.URL, transport http.RoundTripper) {
		fx, g := benchGateway(b, u, transport, func(c *Config) {
			c.AccessLog = slog.New(slog.NewJSONHandler(io.Discard, nil))
			c.RateLimit = RateLimit{Rate: 1e9, Burst: 1 << 30}
		})
		benchmarkHandler(b, g, "/api/orders/7", "Bearer "+fx.mintFor(b, "alice"))
	})
}

// BenchmarkGatewayBasic: Basic credentials with the credential cache warm
// (one password grant, in the warm-up).
func BenchmarkGatewayBasic(b *testing.B) {
	eachUpstream(b, func(b *testing.B, u *url.URL, transport http.RoundTripper) {
		_, g := benchGateway(b, u, transport)
		benchmarkHandler(b, g, "/api/orders/7", basicHeader("alice", testUsers["alice"].password))
	})
}

// BenchmarkGatewayOpaque: an opaque token with the introspection and
// phantom-token caches warm (one introspection and one signature, in the
// warm-up).
func BenchmarkGatewayOpaque(b *testing.B) {
	eachUpstream(b, func(b *testing.B, u *url.URL, transport http.RoundTripper) {
		fx := newFixture(b)
		as := newFakeAS(b, fx)
		as.issue("opaque-alice", "alice", testIssuer, nil)
		_, g := benchGateway(b, u, transport, func(c *Config) {
			c.Opaque = &Opaque{IntrospectionURL: as.URL + "/introspect", Issuer: phantomIssuer}
		})
		benchmarkHandler(b, g, "/api/orders/7", "Bearer opaque-alice")
	})
}

// BenchmarkGatewayOpaqueSign is the opaque path's cost when the phantom
// token is not cached: one ES256 signature per request.
func BenchmarkGatewayOpaqueSign(b *testing.B) {
	fx := newFixture(b)
	ph, err := newPhantoms(&Opaque{Issuer: phantomIssuer, TTL: maxPhantomTTL, CacheSize: 1}, fx.clock.Now, func(bool) {})
	if err != nil {
		b.Fatal(err)
	}
	p, err := fx.verifier.Verify(b.Context(), fx.mintFor(b, "alice"))
	if err != nil {
		b.Fatal(err)
	}
	rt := &route{audience: []string{testAudience}}
	b.ReportAllocs()
	for b.Loop() {
		ph.cache = map[phantomKey]phantomEntry{} // always a miss
		if _, err := ph.token(rt, p, "opaque-alice"); err != nil {
			b.Fatal(err)
		}
	}
}
