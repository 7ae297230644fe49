package gateway

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/resource"
)

const phantomIssuer = "https://gateway.internal.test"

// fakeAS is an authorization server as far as opaque tokens go: an RFC 7662
// introspection endpoint answering from a table (and, for discovery, its
// metadata and the fixture's JWKS). It checks the gateway's client
// credentials and counts introspections.
type fakeAS struct {
	URL            string
	fx             *fixture
	introspections atomic.Int64

	mu                   sync.Mutex
	answers              map[string]map[string]any // by opaque token
	advertiseIntrospect  bool
	introspectionAuthErr bool
}

func newFakeAS(t testing.TB, fx *fixture) *fakeAS {
	t.Helper()
	as := &fakeAS{fx: fx, answers: map[string]map[string]any{}, advertiseIntrospect: true}
	srv := httptest.NewServer(http.HandlerFunc(as.serveHTTP))
	t.Cleanup(srv.Close)
	as.URL = srv.URL
	return as
}

func (as *fakeAS) serveHTTP(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	defer as.mu.Unlock()
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		meta := map[string]string{"issuer": as.URL, "jwks_uri": as.URL + "/jwks", "token_endpoint": as.URL + "/token"}
		if as.advertiseIntrospect {
			meta["introspection_endpoint"] = as.URL + "/introspect"
		}
		json.NewEncoder(w).Encode(meta)
	case "/jwks":
		json.NewEncoder(w).Encode(jose.NewKeySet(as.fx.key.Public()))
	case "/introspect":
		if id, secret, ok := r.BasicAuth(); !ok || id != gwClientID || secret != gwSecret || r.Method != http.MethodPost {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		as.introspections.Add(1)
		r.ParseForm()
		ans, ok := as.answers[r.PostForm.Get("token")]
		if !ok {
			ans = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(ans)
	default:
		http.NotFound(w, r)
	}
}

// issue registers an active opaque token for a test user of the fixture,
// issued by iss, with its answer changed by edit.
func (as *fakeAS) issue(token, name, iss string, edit func(map[string]any)) {
	u := testUsers[name]
	ans := map[string]any{"active": true, "token_type": "Bearer", "iss": iss, "sub": "sub-" + name, "client_id": "cli",
		"aud": testAudience, "scope": u.scope, "username": name, "roles": u.roles, "sid": "sid-" + name,
		"exp": as.fx.clock.Now().Add(5 * time.Minute).Unix(), "jti": "jti-" + token}
	if edit != nil {
		edit(ans)
	}
	as.mu.Lock()
	as.answers[token] = ans
	as.mu.Unlock()
}

// opaqueGateway is the fixture's gateway with opaque tokens introspected at
// as, served over HTTP so that services can fetch its JWKS.
func (fx *fixture) opaqueGateway(t *testing.T, as *fakeAS, routes []Route, mod ...func(*Config)) (*Gateway, string) {
	t.Helper()
	g := fx.gateway(t, routes, append([]func(*Config){func(c *Config) {
		c.Opaque = &Opaque{IntrospectionURL: as.URL + "/introspect", Issuer: phantomIssuer, CacheTTL: time.Minute}
	}}, mod...)...)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv.URL
}

// phantomVerifier is what a service behind the gateway uses for phantom
// tokens: the gateway's issuer and its published JWKS.
func phantomVerifier(t *testing.T, gatewayURL, audience string, now func() time.Time) *resource.Verifier {
	t.Helper()
	v, err := resource.NewVerifier(resource.Config{Issuer: phantomIssuer, Audience: []string{audience},
		JWKSURL: gatewayURL + DefaultJWKSPath, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpaqueTokens(t *testing.T) {
	fx := newFixture(t)
	as := newFakeAS(t, fx)
	now := fx.clock.Now()
	as.issue("opaque-alice", "alice", testIssuer, nil)
	as.issue("opaque-carol", "carol", testIssuer, func(a map[string]any) { a["act"] = map[string]any{"sub": "billing"} })
	as.issue("opaque-soon", "alice", testIssuer, func(a map[string]any) { a["exp"] = now.Add(20 * time.Second).Unix() })
	as.issue("opaque-refresh", "alice", testIssuer, func(a map[string]any) { a["token_use"] = "refresh_token"; delete(a, "token_type") })
	as.issue("opaque-other-aud", "alice", testIssuer, func(a map[string]any) { a["aud"] = "reports-api" })
	as.issue("opaque-other-iss", "alice", "https://evil.test", nil)
	as.issue("opaque-expired", "alice", testIssuer, func(a map[string]any) { a["exp"] = now.Add(-time.Second).Unix() })
	up := newUpstream(t, "svc")
	g, gwURL := fx.opaqueGateway(t, as, []Route{
		{Prefix: "/orders", Upstream: up.URL, Audience: "orders-api"},
		{Prefix: "/consumers", Upstream: up.URL},
		{Prefix: "/admin", Upstream: up.URL, Rules: []Rule{{Roles: []string{"admin"}}}},
	})
	tests := []struct {
		name, token, path string
		wantStatus        int
		wantAudience      string
		wantUser          string
		wantExp           time.Time // at most this
		wantActor         string
	}{
		{name: "route_audience", token: "opaque-alice", path: "/orders/1", wantStatus: http.StatusOK,
			wantAudience: "orders-api", wantUser: "alice", wantExp: now.Add(60 * time.Second)},
		{name: "gateway_audience", token: "opaque-alice", path: "/consumers/me", wantStatus: http.StatusOK,
			wantAudience: testAudience, wantUser: "alice", wantExp: now.Add(60 * time.Second)},
		{name: "role_admits", token: "opaque-carol", path: "/admin", wantStatus: http.StatusOK,
			wantAudience: testAudience, wantUser: "carol", wantExp: now.Add(60 * time.Second), wantActor: "billing"},
		{name: "role_denies", token: "opaque-alice", path: "/admin", wantStatus: http.StatusForbidden},
		{name: "expires_before_ttl", token: "opaque-soon", path: "/consumers/me", wantStatus: http.StatusOK,
			wantAudience: testAudience, wantUser: "alice", wantExp: now.Add(20 * time.Second)},
		{name: "refresh_token", token: "opaque-refresh", path: "/consumers/me", wantStatus: http.StatusUnauthorized},
		{name: "other_audience", token: "opaque-other-aud", path: "/consumers/me", wantStatus: http.StatusUnauthorized},
		{name: "other_issuer", token: "opaque-other-iss", path: "/consumers/me", wantStatus: http.StatusUnauthorized},
		{name: "expired", token: "opaque-expired", path: "/consumers/me", wantStatus: http.StatusUnauthorized},
		{name: "inactive", token: "opaque-unknown", path: "/consumers/me", wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count()
			w := serve(t, g, http.MethodGet, tt.path, "Bearer "+tt.token, nil)
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusOK {
				if up.count() != before {
					t.Errorf("the upstream was called for a refused request")
				}
				return
			}
			e := decodeEcho(t, w)
			for name, values := range e.Header {
				if slices.ContainsFunc(values, func(v string) bool { return strings.Contains(v, tt.token) }) {
					t.Errorf("upstream got the opaque token in %s", name)
				}
			}
			raw := strings.TrimPrefix(e.Header.Get("Authorization"), "Bearer ")
			p, err := phantomVerifier(t, gwURL, tt.wantAudience, fx.clock.Now).Verify(t.Context(), raw)
			if err != nil {
				t.Fatalf("phantom token %q: %v", raw, err)
			}
			u := testUsers[tt.wantUser]
			if p.Issuer != phantomIssuer || p.Subject != "sub-"+tt.wantUser || p.Username != tt.wantUser ||
				p.ClientID != "cli" || p.SessionID != "sid-"+tt.wantUser || !slices.Equal(p.Roles, u.roles) ||
				strings.Join(p.Scopes, " ") != u.scope || p.TokenID == "" || p.TokenID == "jti-"+tt.token {
				t.Errorf("got phantom principal %+v, want %s's claims under the gateway's issuer and a jti of its own", p, tt.wantUser)
			}
			// wantExp was computed from the clock at the start of the test;
			// the phantom was minted later, so its now+60s may be later too.
			latest := tt.wantExp.Add(fx.clock.Now().Sub(now))
			if p.Expiry.After(latest) || p.Expiry.Before(tt.wantExp.Add(-2*time.Second)) {
				t.Errorf("got exp %v, want %v..%v (min of the token's exp and now+60s)", p.Expiry, tt.wantExp.Add(-2*time.Second), latest)
			}
			if got := actorOf(t, raw); got != tt.wantActor {
				t.Errorf("got act.sub %q, want %q", got, tt.wantActor)
			}
		})
	}
	t.Run("jwt_still_verified_locally", func(t *testing.T) {
		before := as.introspections.Load()
		token := fx.mintFor(t, "alice")
		w := serve(t, g, http.MethodGet, "/consumers/me", "Bearer "+token, nil)
		if got := decodeEcho(t, w).Header.Get("Authorization"); got != "Bearer "+token {
			t.Errorf("got %q upstream, want the JWT as sent", got)
		}
		if as.introspections.Load() != before {
			t.Errorf("a JWT was introspected")
		}
	})
}

// actorOf returns the "act" claim's subject of a JWT, unverified.
func actorOf(t *testing.T, raw string) string {
	t.Helper()
	var c struct {
		Act struct {
			Sub string `json:"sub"`
		} `json:"act"`
	}
	_, payload, ok := decodeParts(raw)
	if !ok || json.Unmarshal(payload, &c) != nil {
		t.Fatalf("cannot read %q", raw)
	}
	return c.Act.Sub
}

// TestOpaqueCaches: steady traffic with one opaque token costs one
// introspection per cache TTL and one signature per half phantom lifetime.
func TestOpaqueCaches(t *testing.T) {
	fx := newFixture(t)
	as := newFakeAS(t, fx)
	as.issue("opaque-alice", "alice", testIssuer, func(a map[string]any) { a["exp"] = fx.clock.Now().Add(time.Hour).Unix() })
	up := newUpstream(t, "svc")
	g, _ := fx.opaqueGateway(t, as, []Route{
		{Prefix: "/a", Upstream: up.URL, Audience: "a-api"},
		{Prefix: "/b", Upstream: up.URL, Audience: "b-api"},
	})
	forwarded := func(path string) string {
		t.Helper()
		w := serve(t, g, http.MethodGet, path, "Bearer opaque-alice", nil)
		return decodeEcho(t, w).Header.Get("Authorization")
	}
	first := forwarded("/a")
	for range 9 {
		if got := forwarded("/a"); got != first {
			t.Fatalf("got a new phantom token within its reuse window")
		}
	}
	if n := as.introspections.Load(); n != 1 {
		t.Errorf("got %d introspections for 10 requests, want 1", n)
	}
	if other := forwarded("/b"); other == first {
		t.Errorf("got the same phantom token for two audiences")
	}
	fx.clock.Advance(31 * time.Second) // past half the phantom lifetime, within the introspection TTL
	if again := forwarded("/a"); again == first {
		t.Errorf("got the same phantom token after half its lifetime, want a fresh one")
	}
	if n := as.introspections.Load(); n != 1 {
		t.Errorf("got %d introspections within the cache TTL, want 1", n)
	}
	fx.clock.Advance(30 * time.Second) // past the introspection TTL (1m)
	forwarded("/a")
	if n := as.introspections.Load(); n != 2 {
		t.Errorf("got %d introspections after the cache TTL, want 2", n)
	}
	// Revoked at the server: refused at the gateway once the answer is no
	// longer cached.
	as.mu.Lock()
	delete(as.answers, "opaque-alice")
	as.mu.Unlock()
	fx.clock.Advance(61 * time.Second)
	if w := serve(t, g, http.MethodGet, "/a", "Bearer opaque-alice", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("got %d for a revoked token past the cache TTL, want 401", w.Code)
	}
}

// TestOpaqueDiscovery: given only the issuer URL, the gateway finds the
// introspection endpoint (and the JWKS) by discovery; a failed discovery is
// answered 503 and tried again.
func TestOpaqueDiscovery(t *testing.T) {
	fx := newFixture(t)
	as := newFakeAS(t, fx)
	as.issue("opaque-alice", "alice", as.URL, nil)
	as.advertiseIntrospect = false
	up := newUpstream(t, "svc")
	g := fx.gateway(t, []Route{{Prefix: "/api", Upstream: up.URL}}, func(c *Config) {
		c.Issuer, c.Verifier, c.TokenURL = as.URL, nil, ""
		c.Opaque = &Opaque{Issuer: phantomIssuer}
	})
	w := serve(t, g, http.MethodGet, "/api", "Bearer opaque-alice", nil)
	if w.Code != http.StatusServiceUnavailable || errorCode(t, w) != "temporarily_unavailable" {
		t.Fatalf("without introspection_endpoint: got %d %s, want 503 temporarily_unavailable", w.Code, w.Body)
	}
	as.mu.Lock()
	as.advertiseIntrospect = true
	as.mu.Unlock()
	// The metadata was fetched and kept: a fresh gateway sees the fix.
	g = fx.gateway(t, []Route{{Prefix: "/api", Upstream: up.URL}}, func(c *Config) {
		c.Issuer, c.Verifier, c.TokenURL = as.URL, nil, ""
		c.Opaque = &Opaque{Issuer: phantomIssuer}
	})
	for _, auth := range []string{"Bearer opaque-alice", "Bearer " + fx.mintFor(t, "alice", func(c *jose.Claims) { c.Issuer = as.URL })} {
		if w := serve(t, g, http.MethodGet, "/api", auth, nil); w.Code != http.StatusOK {
			t.Errorf("%.20s…: got %d %s, want 200", auth, w.Code, w.Body)
		}
	}
	if n := as.introspections.Load(); n != 1 {
		t.Errorf("got %d introspections, want 1", n)
	}
}

// TestOpaqueTokensOff: without Opaque, an opaque token is refused without
// asking anyone.
func TestOpaqueTokensOff(t *testing.T) {
	fx := newFixture(t)
	as := newFakeAS(t, fx)
	as.issue("opaque-alice", "alice", testIssuer, nil)
	up := newUpstream(t, "svc")
	g := fx.gateway(t, []Route{{Prefix: "/api", Upstream: up.URL}})
	w := serve(t, g, http.MethodGet, "/api", "Bearer opaque-alice", nil)
	if w.Code != http.StatusUnauthorized || as.introspections.Load() != 0 || up.count() != 0 {
		t.Errorf("got %d, %d introspections, %d upstream requests; want 401, 0, 0", w.Code, as.introspections.Load(), up.count())
	}
	if w := serve(t, g, http.MethodGet, DefaultJWKSPath, "", nil); w.Code != http.StatusNotFound {
		t.Errorf("got %d for the phantom JWKS with opaque tokens off, want 404", w.Code)
	}
}

// TestServiceAcceptsBothIssuers: a service behind the gateway chains a
// verifier for the authorization server and one for phantom tokens with
// resource.AnyVerifier, and so serves JWT and opaque callers alike.
func TestServiceAcceptsBothIssuers(t *testing.T) {
	fx := newFixture(t)
	as := newFakeAS(t, fx)
	as.issue("opaque-carol", "carol", testIssuer, nil)
	var service atomic.Pointer[resource.TokenVerifier]
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resource.Middleware(*service.Load())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := resource.FromContext(r.Context())
			json.NewEncoder(w).Encode(map[string]string{"iss": p.Issuer, "user": p.Username})
		})).ServeHTTP(w, r)
	}))
	t.Cleanup(svc.Close)
	g, gwURL := fx.opaqueGateway(t, as, []Route{{Prefix: "/svc", Upstream: svc.URL}})
	var both resource.TokenVerifier = resource.AnyVerifier{fx.verifier, phantomVerifier(t, gwURL, testAudience, fx.clock.Now)}
	service.Store(&both)
	tests := []struct{ name, auth, wantIssuer, wantUser string }{
		{name: "jwt", auth: "Bearer " + fx.mintFor(t, "alice"), wantIssuer: testIssuer, wantUser: "alice"},
		{name: "opaque", auth: "Bearer opaque-carol", wantIssuer: phantomIssuer, wantUser: "carol"},
		{name: "basic", auth: basicHeader("sam", testUsers["sam"].password), wantIssuer: testIssuer, wantUser: "sam"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, g, http.MethodGet, "/svc", tt.auth, nil)
			var got map[string]string
			if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &got) != nil {
				t.Fatalf("got %d %s, want 200", w.Code, w.Body)
			}
			if got["iss"] != tt.wantIssuer || got["user"] != tt.wantUser {
				t.Errorf("service saw %v, want %s from %s", got, tt.wantUser, tt.wantIssuer)
			}
		})
	}
}

// decodeParts returns the decoded header and payload of a compact JWS.
func decodeParts(raw string) (header, payload []byte, ok bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, nil, false
	}
	header, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	payload, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	return header, payload, err1 == nil && err2 == nil
}
