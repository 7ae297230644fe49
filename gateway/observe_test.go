package gateway

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value reads a counter.
func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// observedGateway is a gateway that verifies JWTs itself (found by
// discovery at a fake authorization server), accepts Basic credentials and
// opaque tokens, and reports to reg.
func observedGateway(t *testing.T, reg prometheus.Registerer, mod ...func(*Config)) (*fixture, *fakeAS, *Gateway, *upstream) {
	t.Helper()
	fx := newFixture(t)
	as := newFakeAS(t, fx)
	fx.issuer = as.URL
	as.issue("opaque-alice", "alice", as.URL, nil)
	up := newUpstream(t, "svc")
	g := fx.gateway(t, []Route{
		{Name: "api", Prefix: "/api", Upstream: up.URL},
		{Name: "admin", Prefix: "/admin", Upstream: up.URL, Rules: []Rule{{Roles: []string{"admin"}}}},
	}, append([]func(*Config){func(c *Config) {
		c.Issuer, c.Verifier, c.Registerer = as.URL, nil, reg
		c.Opaque = &Opaque{IntrospectionURL: as.URL + "/introspect", Issuer: phantomIssuer}
	}}, mod...)...)
	return fx, as, g, up
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	fx, _, g, _ := observedGateway(t, reg)
	alice := "Bearer " + fx.mintFor(t, "alice")
	aliceBasic := basicHeader("alice", testUsers["alice"].password)
	requests := []struct{ path, auth string }{
		{"/api", alice}, {"/api", alice}, {"/api", alice}, // token cache: miss, hit, hit
		{"/api", aliceBasic}, {"/api", aliceBasic}, // basic cache: miss, hit (the grant's token is verified: a token miss)
		{"/api", "Bearer opaque-alice"}, {"/api", "Bearer opaque-alice"}, // introspection and phantom: miss, hit
		{"/admin", alice},                       // denied
		{"/api", "Bearer x.y.z"},                // unauthenticated (a token miss)
		{"/api", ""},                            // unauthenticated
		{"/nowhere", ""},                        // no route
		{"/api", basicHeader("alice", "wrong")}, // unauthenticated (a basic miss)
	}
	for _, r := range requests {
		serve(t, g, http.MethodGet, r.path, r.auth, nil)
	}
	m := g.metrics
	counters := []struct {
		name string
		c    prometheus.Counter
		want float64
	}{
		{"api bearer proxied", m.requests.WithLabelValues("api", authBearer, outcomeProxied), 3},
		{"api basic proxied", m.requests.WithLabelValues("api", authBasic, outcomeProxied), 2},
		{"api opaque proxied", m.requests.WithLabelValues("api", authOpaque, outcomeProxied), 2},
		{"admin bearer denied", m.requests.WithLabelValues("admin", authBearer, outcomeDenied), 1},
		{"api bearer unauthenticated", m.requests.WithLabelValues("api", authBearer, outcomeUnauthenticated), 1},
		{"api none unauthenticated", m.requests.WithLabelValues("api", authNone, outcomeUnauthenticated), 1},
		{"api basic unauthenticated", m.requests.WithLabelValues("api", authBasic, outcomeUnauthenticated), 1},
		{"none none no_route", m.requests.WithLabelValues("none", authNone, outcomeNoRoute), 1},
		{"token hit", m.cache.WithLabelValues(cacheToken, "hit"), 3},
		{"token miss", m.cache.WithLabelValues(cacheToken, "miss"), 3},
		{"basic hit", m.cache.WithLabelValues(cacheBasic, "hit"), 1},
		{"basic miss", m.cache.WithLabelValues(cacheBasic, "miss"), 2},
		{"introspection hit", m.cache.WithLabelValues(cacheIntrospection, "hit"), 1},
		{"introspection miss", m.cache.WithLabelValues(cacheIntrospection, "miss"), 1},
		{"phantom hit", m.cache.WithLabelValues(cachePhantom, "hit"), 1},
		{"phantom miss", m.cache.WithLabelValues(cachePhantom, "miss"), 1},
	}
	for _, c := range counters {
		if got := value(t, c.c); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series []string
	var count uint64
	for _, mf := range mfs {
		if mf.GetName() == "gatehouse_gateway_upstream_duration_seconds" {
			for _, metric := range mf.GetMetric() {
				series = append(series, metric.GetLabel()[0].GetValue())
				count += metric.GetHistogram().GetSampleCount()
			}
		}
	}
	if len(series) != 2 || count != 7 {
		t.Errorf("got upstream latency series %v with %d observations, want api and admin with 7 (the proxied requests)", series, count)
	}

	// A gateway built on reload shares the registry, and the counters.
	_, _, g2, _ := observedGateway(t, reg)
	serve(t, g2, http.MethodGet, "/nowhere", "", nil)
	if got := value(t, m.requests.WithLabelValues("none", authNone, outcomeNoRoute)); got != 2 {
		t.Errorf("after a second gateway on the registry: got %v no_route requests, want 2", got)
	}
}

func TestAccessLog(t *testing.T) {
	var buf bytes.Buffer
	fx, _, g, _ := observedGateway(t, nil, func(c *Config) {
		c.AccessLog = slog.New(slog.NewJSONHandler(&buf, nil))
	})
	jwt := fx.mintFor(t, "alice")
	password := testUsers["alice"].password
	secrets := []string{jwt, password, "opaque-alice", "query-secret"}
	tests := []struct {
		target, auth                     string
		wantRoute, wantAuth, wantOutcome string
		wantStatus                       int
		wantSubject                      string
	}{
		{"/api/x?access_token=query-secret", "Bearer " + jwt, "api", authBearer, outcomeProxied, 200, "sub-alice"},
		{"/api/x", basicHeader("alice", password), "api", authBasic, outcomeProxied, 200, "sub-alice"},
		{"/api/x", "Bearer opaque-alice", "api", authOpaque, outcomeProxied, 200, "sub-alice"},
		{"/admin", "Bearer " + jwt, "admin", authBearer, outcomeDenied, 403, "sub-alice"},
		{"/api/x", basicHeader("alice", password+"x"), "api", authBasic, outcomeUnauthenticated, 401, ""},
		{"/nope", "", "none", authNone, outcomeNoRoute, 404, ""},
	}
	for _, tt := range tests {
		buf.Reset()
		serve(t, g, http.MethodGet, tt.target, tt.auth, nil)
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("%s: got log %q, want one JSON line", tt.target, buf.String())
		}
		path, _, _ := strings.Cut(tt.target, "?")
		want := map[string]any{"msg": "request", "method": "GET", "path": path, "route": tt.wantRoute,
			"status": float64(tt.wantStatus), "auth": tt.wantAuth, "outcome": tt.wantOutcome, "subject": tt.wantSubject}
		for k, v := range want {
			if line[k] != v {
				t.Errorf("%s: got %s=%v, want %v", tt.target, k, line[k], v)
			}
		}
		if _, ok := line["duration"]; !ok {
			t.Errorf("%s: got no duration", tt.target)
		}
		for _, s := range secrets {
			if strings.Contains(buf.String(), s) {
				t.Errorf("%s: the access log holds a secret: %s", tt.target, buf.String())
			}
		}
	}
}

func TestHealth(t *testing.T) {
	up := newUpstream(t, "svc")
	catchAll := []Route{{Prefix: "/", Upstream: up.URL, Rules: []Rule{{Public: true}}}}
	fx := newFixture(t)
	as := newFakeAS(t, fx)
	ready := fx.gateway(t, catchAll, func(c *Config) { c.Issuer, c.Verifier = as.URL, nil })
	down := fx.gateway(t, catchAll, func(c *Config) { c.Issuer, c.Verifier = "http://127.0.0.1:1", nil })
	static := fx.gateway(t, catchAll) // a static verifier: always ready
	tests := []struct {
		name, method, path string
		g                  *Gateway
		wantStatus         int
		wantBody           string
	}{
		{name: "healthz", method: "GET", path: "/healthz", g: down, wantStatus: 200, wantBody: `{"status":"ok"}`},
		{name: "readyz_keys_fetchable", method: "GET", path: "/readyz", g: ready, wantStatus: 200, wantBody: `{"status":"ready"}`},
		{name: "readyz_issuer_down", method: "GET", path: "/readyz", g: down, wantStatus: 503, wantBody: `{"status":"unavailable"}`},
		{name: "readyz_static_keys", method: "HEAD", path: "/readyz", g: static, wantStatus: 200},
		{name: "healthz_post", method: "POST", path: "/healthz", g: ready, wantStatus: 405},
		{name: "below_is_routed", method: "GET", path: "/healthz/x", g: ready, wantStatus: 200, wantBody: "svc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count()
			w := serve(t, tt.g, tt.method, tt.path, "", nil)
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
			forwarded := up.count() != before
			if forwarded != (tt.wantBody == "svc") {
				t.Errorf("got forwarded %v, want %v", forwarded, tt.wantBody == "svc")
			}
			if tt.wantBody != "" && tt.wantBody != "svc" && strings.TrimSpace(w.Body.String()) != tt.wantBody {
				t.Errorf("got body %s, want %s", w.Body, tt.wantBody)
			}
		})
	}
}

// TestAccessLogSession: a request carried by a session cookie is logged
// with auth=session and its subject, not as anonymous.
func TestAccessLogSession(t *testing.T) {
	var buf bytes.Buffer
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	up := newRecorder(t)
	g := fx.sessionGateway(t, as, []Route{{Name: "api", Prefix: "/api", Upstream: up.URL}},
		func(c *Config) { c.AccessLog = slog.New(slog.NewJSONHandler(&buf, nil)) })
	at, rt := as.login("alice")
	tests := []struct {
		name        string
		header      http.Header
		wantAuth    string
		wantSubject string
	}{
		{"cookie", cookieHeader(at, rt), authSession, "sub-alice"},
		{"no_cookie", http.Header{}, authNone, ""},
	}
	for _, tt := range tests {
		buf.Reset()
		sessionRequest(g, http.MethodGet, "/api/x", tt.header, "")
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("%s: got log %q, want one JSON line", tt.name, buf.String())
		}
		if line["auth"] != tt.wantAuth || line["subject"] != tt.wantSubject {
			t.Errorf("%s: got auth=%v subject=%v, want %s %q", tt.name, line["auth"], line["subject"], tt.wantAuth, tt.wantSubject)
		}
		if strings.Contains(buf.String(), at) || strings.Contains(buf.String(), rt) {
			t.Errorf("%s: the access log holds a session token", tt.name)
		}
	}
}
