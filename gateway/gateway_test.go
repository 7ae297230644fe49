package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// The fixture's authorization server: an issuer whose keys the gateway's
// static verifier holds, and a fake token endpoint that runs password grants
// for the users below and counts them.
const (
	testIssuer   = "https://auth.example.test"
	testAudience = "demo-api"
	gwClientID   = "gateway"
	gwSecret     = "gateway-secret-0123456789"
)

type testUser struct {
	password string
	roles    []string
	scope    string
}

var testUsers = map[string]testUser{
	"alice": {password: "alice-password-1", roles: []string{"consumer"}, scope: "orders"},
	"carol": {password: "carol-password-1", roles: []string{"consumer", "admin"}, scope: "orders write"},
	"olga":  {password: "olga-password-1", roles: []string{"ops"}},
	"sam":   {password: "sam-password-1", roles: []string{"consumer"}, scope: "orders write"},
}

type fixture struct {
	// issuer of the tokens the fake token endpoint and mintFor sign; if
	// empty, testIssuer.
	issuer   string
	key      *jose.PrivateKey
	verifier *resource.Verifier
	clock    *clock
	// tokenURL is the fake token endpoint; grants counts the password
	// grants it has answered, successful or not.
	tokenURL string
	grants   atomic.Int64
	// tokenDown makes the token endpoint answer 500.
	tokenDown atomic.Bool
	// refused holds the usernames whose password grants the token endpoint
	// refuses (a password changed, a user disabled); roles, their roles in
	// place of testUsers' (string slices).
	refused, roles sync.Map
}

// clock is a settable clock shared by the fixture, the verifier and the
// gateway.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	key, err := jose.GenerateKey(jose.ES256)
	if err != nil {
		tb.Fatal(err)
	}
	jwks, err := json.Marshal(jose.NewKeySet(key.Public()))
	if err != nil {
		tb.Fatal(err)
	}
	fx := &fixture{key: key, clock: &clock{}}
	fx.verifier, err = resource.NewStaticVerifier(resource.Config{Issuer: testIssuer, Audience: []string{testAudience},
		Now: fx.clock.Now}, jwks)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(fx.serveToken))
	tb.Cleanup(srv.Close)
	fx.tokenURL = srv.URL + "/token"
	return fx
}

// serveToken is a minimal password-grant token endpoint.
func (fx *fixture) serveToken(w http.ResponseWriter, r *http.Request) {
	if fx.tokenDown.Load() {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok || id != gwClientID || secret != gwSecret {
		oauth.WriteError(w, &oauth.Error{Code: oauth.ErrInvalidClient})
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != oauth.GrantPassword {
		oauth.WriteError(w, &oauth.Error{Code: oauth.ErrInvalidRequest})
		return
	}
	fx.grants.Add(1)
	name := r.PostForm.Get("username")
	u, ok := testUsers[name]
	if _, no := fx.refused.Load(name); no || !ok || u.password != r.PostForm.Get("password") {
		oauth.WriteError(w, oauth.Errorf(oauth.ErrInvalidGrant, "invalid username or password"))
		return
	}
	token, err := jose.Sign(fx.key, jose.TypeAccessToken, fx.claims(name))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	oauth.WriteJSON(w, http.StatusOK, oauth.TokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: 300, Scope: u.scope})
}

// claims returns valid access-token claims for a test user.
func (fx *fixture) claims(name string) jose.Claims {
	u := testUsers[name]
	now := fx.clock.Now()
	iss := fx.issuer
	if iss == "" {
		iss = testIssuer
	}
	roles := u.roles
	if r, ok := fx.roles.Load(name); ok {
		roles = r.([]string)
	}
	return jose.Claims{Issuer: iss, Subject: "sub-" + name, Audience: jose.Audience{testAudience},
		IssuedAt: jose.NewNumericDate(now), Expiry: jose.NewNumericDate(now.Add(5 * time.Minute)),
		ID: rand.Text(), ClientID: "cli", Username: name, Roles: roles, Scope: u.scope}
}

// mintFor signs the claims of a test user, changed by edit.
func (fx *fixture) mintFor(tb testing.TB, name string, edit ...func(*jose.Claims)) string {
	tb.Helper()
	c := fx.claims(name)
	for _, e := range edit {
		e(&c)
	}
	raw, err := jose.Sign(fx.key, jose.TypeAccessToken, c)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// upstream is a service behind the gateway that records what reaches it and
// answers with a JSON echo.
type upstream struct {
	name string
	URL  string
	mu   sync.Mutex
	seen []*http.Request
}

type echo struct {
	Upstream string      `json:"upstream"`
	Path     string      `json:"path"`
	RawQuery string      `json:"raw_query"`
	Header   http.Header `json:"header"`
}

func newUpstream(tb testing.TB, name string) *upstream {
	tb.Helper()
	u := &upstream{name: name}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Clone(r.Context()))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echo{Upstream: name, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header})
	}))
	tb.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

func (fx *fixture) gateway(tb testing.TB, routes []Route, mod ...func(*Config)) *Gateway {
	tb.Helper()
	cfg := Config{
		Issuer: testIssuer, Audience: []string{testAudience}, TokenURL: fx.tokenURL,
		ClientID: gwClientID, ClientSecret: gwSecret, Routes: routes, Verifier: fx.verifier,
		Logger: slog.New(slog.DiscardHandler), Now: fx.clock.Now,
	}
	for _, m := range mod {
		m(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		tb.Fatalf("gateway.New: %v", err)
	}
	return g
}

// serve runs one request through g; target is a raw request target, kept
// as the client sent it.
func serve(tb testing.TB, g http.Handler, method, target, authorization string, header http.Header) *httptest.ResponseRecorder {
	tb.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func decodeEcho(tb testing.TB, w *httptest.ResponseRecorder) echo {
	tb.Helper()
	var e echo
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Upstream == "" {
		tb.Fatalf("got %d %q, want an upstream echo", w.Code, w.Body)
	}
	return e
}

func errorCode(tb testing.TB, w *httptest.ResponseRecorder) string {
	tb.Helper()
	var e oauth.Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		tb.Fatalf("got body %q, want a JSON error: %v", w.Body, err)
	}
	return e.Code
}

func TestRouteMatching(t *testing.T) {
	fx := newFixture(t)
	admin, orders, special, static, api := newUpstream(t, "admin"), newUpstream(t, "orders"),
		newUpstream(t, "special"), newUpstream(t, "static"), newUpstream(t, "api")
	public := []Rule{{Public: true}}
	g := fx.gateway(t, []Route{
		{Prefix: "/api/admin/orders", Upstream: admin.URL, StripPrefix: "/api/admin", Rules: public},
		{Prefix: "/api/orders", Upstream: orders.URL, StripPrefix: "/api", Rules: public},
		{Prefix: "/api/orders/special", Upstream: special.URL, Rules: public}, // shadowed: first match wins
		{Prefix: "/static/", Upstream: static.URL, Rules: public},
		{Prefix: "/api", Upstream: api.URL, Rules: public},
	})
	tests := []struct {
		name, target string
		// wantUpstream is "" for 404.
		wantUpstream, wantPath, wantQuery string
	}{
		{name: "exact_prefix", target: "/api/orders", wantUpstream: "orders", wantPath: "/orders"},
		{name: "trailing_slash", target: "/api/orders/", wantUpstream: "orders", wantPath: "/orders/"},
		{name: "below_prefix", target: "/api/orders/7", wantUpstream: "orders", wantPath: "/orders/7"},
		{name: "query_kept", target: "/api/orders/7?x=1&y=%2F", wantUpstream: "orders", wantPath: "/orders/7", wantQuery: "x=1&y=%2F"},
		{name: "not_a_segment_boundary", target: "/api/ordersX", wantUpstream: "api", wantPath: "/api/ordersX"},
		{name: "more_specific_first", target: "/api/admin/orders", wantUpstream: "admin", wantPath: "/orders"},
		{name: "more_specific_first_below", target: "/api/admin/orders/7", wantUpstream: "admin", wantPath: "/orders/7"},
		{name: "admin_not_a_boundary", target: "/api/admin/ordersX", wantUpstream: "api", wantPath: "/api/admin/ordersX"},
		{name: "first_match_wins", target: "/api/orders/special/1", wantUpstream: "orders", wantPath: "/orders/special/1"},
		{name: "prefix_with_slash", target: "/static/app.js", wantUpstream: "static", wantPath: "/static/app.js"},
		{name: "escaped_space", target: "/api/orders/a%20b", wantUpstream: "orders", wantPath: "/orders/a b"},
		{name: "prefix_with_slash_needs_it", target: "/static"},
		{name: "root", target: "/"},
		{name: "no_route", target: "/other"},
		{name: "case_sensitive", target: "/API/orders"},
		{name: "dot_dot", target: "/api/orders/../admin/orders"},
		{name: "dot_dot_at_end", target: "/api/orders/.."},
		{name: "dot", target: "/api/orders/./7"},
		{name: "escaped_dot_dot", target: "/api/orders/%2e%2e/admin/orders"},
		{name: "double_slash_leading", target: "//api/orders"},
		{name: "double_slash_inside", target: "/api//orders"},
		{name: "double_slash_below", target: "/api/orders//7"},
		{name: "double_slash_only", target: "//"},
		{name: "escaped_slash", target: "/api/orders%2F7"},
		{name: "escaped_slash_lower", target: "/api/orders/a%2fb"},
		{name: "escaped_slash_traversal", target: "/api/orders%2F..%2Fadmin%2Forders"},
		{name: "escaped_backslash", target: "/api/orders/..%5Cadmin%5Corders"},
		{name: "literal_backslash", target: "/api/orders/..\\admin\\orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, g, http.MethodGet, tt.target, "", nil)
			if tt.wantUpstream == "" {
				if w.Code != http.StatusNotFound {
					t.Fatalf("got %d %s, want 404", w.Code, w.Body)
				}
				if code := errorCode(t, w); code != "not_found" {
					t.Errorf("got error %q, want %q", code, "not_found")
				}
				return
			}
			if w.Code != http.StatusOK {
				t.Fatalf("got %d %s, want 200", w.Code, w.Body)
			}
			e := decodeEcho(t, w)
			if e.Upstream != tt.wantUpstream || e.Path != tt.wantPath || e.RawQuery != tt.wantQuery {
				t.Errorf("got %s %q ?%q, want %s %q ?%q", e.Upstream, e.Path, e.RawQuery, tt.wantUpstream, tt.wantPath, tt.wantQuery)
			}
		})
	}
}

func TestRules(t *testing.T) {
	fx := newFixture(t)
	up := newUpstream(t, "svc")
	g := fx.gateway(t, []Route{
		{Prefix: "/r", Upstream: up.URL, Rules: []Rule{
			{Methods: []string{http.MethodGet, http.MethodHead}, Public: true},
			{Methods: []string{http.MethodPost}, Roles: []string{"admin", "ops"}},
			{Methods: []string{http.MethodPut}, Scopes: []string{"orders", "write"}},
			{Methods: []string{http.MethodPatch}, Roles: []string{"admin"}, Scopes: []string{"orders"}},
			{Methods: []string{http.MethodPatch, http.MethodDelete}, Roles: []string{"ops"}}, // PATCH decided above
		}},
		{Prefix: "/open", Upstream: up.URL},
		{Prefix: "/all", Upstream: up.URL, Rules: []Rule{{Roles: []string{"admin"}}}},
	})
	tokens := map[string]string{}
	for name := range testUsers {
		tokens[name] = "Bearer " + fx.mintFor(t, name)
	}
	bearer := func(name string) string { return tokens[name] }
	expired := "Bearer " + fx.mintFor(t, "carol", func(c *jose.Claims) {
		c.Expiry = jose.NewNumericDate(time.Now().Add(-time.Hour))
	})
	tests := []struct {
		name, method, path, auth string
		wantStatus               int
		// wantForwardedAuth is the Authorization the upstream must see
		// on success.
		wantForwardedAuth string
	}{
		{name: "public_anonymous", method: http.MethodGet, path: "/r", wantStatus: http.StatusOK},
		{name: "public_drops_credentials", method: http.MethodGet, path: "/r", auth: bearer("alice"), wantStatus: http.StatusOK},
		{name: "public_head", method: http.MethodHead, path: "/r", wantStatus: http.StatusOK},
		{name: "roles_anonymous", method: http.MethodPost, path: "/r", wantStatus: http.StatusUnauthorized},
		{name: "roles_missing", method: http.MethodPost, path: "/r", auth: bearer("alice"), wantStatus: http.StatusForbidden},
		{name: "roles_first_of_any", method: http.MethodPost, path: "/r", auth: bearer("carol"), wantStatus: http.StatusOK,
			wantForwardedAuth: bearer("carol")},
		{name: "roles_second_of_any", method: http.MethodPost, path: "/r", auth: bearer("olga"), wantStatus: http.StatusOK,
			wantForwardedAuth: bearer("olga")},
		{name: "roles_bad_token", method: http.MethodPost, path: "/r", auth: expired, wantStatus: http.StatusUnauthorized},
		{name: "scopes_one_of_two", method: http.MethodPut, path: "/r", auth: bearer("alice"), wantStatus: http.StatusForbidden},
		{name: "scopes_none", method: http.MethodPut, path: "/r", auth: bearer("olga"), wantStatus: http.StatusForbidden},
		{name: "scopes_all", method: http.MethodPut, path: "/r", auth: bearer("sam"), wantStatus: http.StatusOK,
			wantForwardedAuth: bearer("sam")},
		{name: "roles_and_scopes", method: http.MethodPatch, path: "/r", auth: bearer("carol"), wantStatus: http.StatusOK,
			wantForwardedAuth: bearer("carol")},
		{name: "first_rule_decides", method: http.MethodPatch, path: "/r", auth: bearer("olga"), wantStatus: http.StatusForbidden},
		{name: "later_rule", method: http.MethodDelete, path: "/r", auth: bearer("olga"), wantStatus: http.StatusOK,
			wantForwardedAuth: bearer("olga")},
		{name: "later_rule_denies", method: http.MethodDelete, path: "/r", auth: bearer("carol"), wantStatus: http.StatusForbidden},
		{name: "no_rule_for_method", method: http.MethodOptions, path: "/r", auth: bearer("carol"), wantStatus: http.StatusForbidden},
		{name: "no_rule_for_method_anonymous", method: http.MethodOptions, path: "/r", wantStatus: http.StatusForbidden},
		{name: "no_rules_needs_authentication", method: http.MethodGet, path: "/open", wantStatus: http.StatusUnauthorized},
		{name: "no_rules_admits_authenticated", method: http.MethodDelete, path: "/open", auth: bearer("alice"), wantStatus: http.StatusOK,
			wantForwardedAuth: bearer("alice")},
		{name: "no_rules_basic", method: http.MethodGet, path: "/open", auth: basicHeader("alice", testUsers["alice"].password), wantStatus: http.StatusOK,
			wantForwardedAuth: "Bearer *"},
		{name: "rule_without_methods_denies", method: http.MethodPut, path: "/all", auth: bearer("alice"), wantStatus: http.StatusForbidden},
		{name: "rule_without_methods_admits", method: http.MethodPut, path: "/all", auth: bearer("carol"), wantStatus: http.StatusOK,
			wantForwardedAuth: bearer("carol")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count()
			w := serve(t, g, tt.method, tt.path, tt.auth, nil)
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
			reached := up.count() - before
			if tt.wantStatus != http.StatusOK {
				if reached != 0 {
					t.Errorf("got %d requests at the upstream, want 0", reached)
				}
				wantCode := oauth.ErrAccessDenied
				if tt.wantStatus == http.StatusUnauthorized {
					wantCode = oauth.ErrInvalidRequest
					if tt.auth != "" {
						wantCode = oauth.ErrInvalidToken
					}
					if got := w.Header().Values("WWW-Authenticate"); len(got) != 2 {
						t.Errorf("got WWW-Authenticate %q, want a Bearer and a Basic challenge", got)
					}
				}
				if code := errorCode(t, w); code != wantCode {
					t.Errorf("got error %q, want %q", code, wantCode)
				}
				return
			}
			if reached != 1 {
				t.Fatalf("got %d requests at the upstream, want 1", reached)
			}
			up.mu.Lock()
			got := up.seen[len(up.seen)-1].Header.Get("Authorization")
			up.mu.Unlock()
			if got != tt.wantForwardedAuth && !(tt.wantForwardedAuth == "Bearer *" && strings.HasPrefix(got, "Bearer ey")) {
				t.Errorf("got Authorization %q upstream, want %q", got, tt.wantForwardedAuth)
			}
		})
	}
}

// forgedIdentity are headers a client might send to pass as someone else,
// in the spellings upstream frameworks read them.
var forgedIdentity = http.Header{
	"X-User":                   {"carol"},
	"X-User-Id":                {"sub-carol"},
	"X-Forwarded-User":         {"carol"},
	"X-Forwarded-Email":        {"carol@example.test"},
	"X-Forwarded-Groups":       {"admin"},
	"X-Forwarded-Access-Token": {"forged"},
	"X-Remote-User":            {"carol"},
	"Remote-User":              {"carol"},
	"X-Auth-Request-User":      {"carol"},
	"X-Authenticated-Userid":   {"carol"},
	"X-Gatehouse-Roles":        {"admin"},
	"X-Gatehouse-User":         {"carol"},
	"X-Roles":                  {"admin"},
	"X-Jwt-Assertion":          {"forged"},
	"X-Id-Token":               {"forged"},
	"X-Access-Token":           {"forged"},
	"X-Client-Cert":            {"forged"},
	"X-Real-Ip":                {"10.0.0.1"},
	"Forwarded":                {"for=10.0.0.1;by=admin"},
	"X-Forwarded-For":          {"10.0.0.1"},
	"X-Forwarded-Host":         {"admin.internal"},
	"X-Custom-Identity":        {"carol"}, // configured in StripHeaders below
	// CGI-style servers (WSGI, Rack, PHP) read X_User as HTTP_X_USER,
	// the same variable as X-User.
	"X_user":            {"carol"},
	"X_forwarded_user":  {"carol"},
	"X_gatehouse_roles": {"admin"},
	"X-Forwarded_user":  {"carol"},
	"X_custom-identity": {"carol"},
	"X_forwarded_for":   {"10.0.0.1"},
	"X_real_ip":         {"10.0.0.1"},
}

// asCGI is the name under which a CGI-style server presents a header:
// underscores and hyphens are the same.
func asCGI(name string) string {
	return http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))
}

func TestIdentityHeadersStripped(t *testing.T) {
	forged := map[string]bool{}
	for name := range forgedIdentity {
		forged[asCGI(name)] = true
	}
	fx := newFixture(t)
	up := newUpstream(t, "svc")
	g := fx.gateway(t, []Route{
		{Prefix: "/public", Upstream: up.URL, Rules: []Rule{{Public: true}}},
		{Prefix: "/private", Upstream: up.URL},
	}, func(c *Config) { c.StripHeaders = []string{"x-custom-identity"} })
	aliceToken := fx.mintFor(t, "alice")
	tests := []struct {
		name, path, auth string
		wantAuthPrefix   string // "" means no Authorization upstream
	}{
		{name: "bearer", path: "/private", auth: "Bearer " + aliceToken, wantAuthPrefix: "Bearer " + aliceToken},
		{name: "basic", path: "/private", auth: basicHeader("alice", testUsers["alice"].password), wantAuthPrefix: "Bearer ey"},
		{name: "public", path: "/public", auth: "Bearer " + aliceToken},
		{name: "public_anonymous", path: "/public"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, g, http.MethodGet, tt.path, tt.auth, forgedIdentity.Clone())
			if w.Code != http.StatusOK {
				t.Fatalf("got %d %s, want 200", w.Code, w.Body)
			}
			got := decodeEcho(t, w).Header
			for name, v := range got {
				switch {
				case name == "X-Forwarded-For" || name == "X-Forwarded-Host":
					// set by the gateway; checked below
				case forged[asCGI(name)]:
					t.Errorf("upstream got %s: %q, want it stripped", name, v)
				}
			}
			if xff := got.Values("X-Forwarded-For"); !slices.Equal(xff, []string{"192.0.2.1"}) {
				t.Errorf("got X-Forwarded-For %q, want the client's address only", xff)
			}
			if xfh := got.Get("X-Forwarded-Host"); xfh != "example.com" {
				t.Errorf("got X-Forwarded-Host %q, want the request's host %q", xfh, "example.com")
			}
			auth := got.Get("Authorization")
			if tt.wantAuthPrefix == "" && auth != "" || !strings.HasPrefix(auth, tt.wantAuthPrefix) {
				t.Errorf("got Authorization %q upstream, want prefix %q", auth, tt.wantAuthPrefix)
			}
			if tt.wantAuthPrefix != "" {
				p, err := fx.verifier.Verify(t.Context(), strings.TrimPrefix(auth, "Bearer "))
				if err != nil || p.Username != "alice" {
					t.Errorf("forwarded token: got %+v, %v, want alice's", p, err)
				}
			}
		})
	}
}

func TestUpstreamDown(t *testing.T) {
	fx := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	g := fx.gateway(t, []Route{
		{Prefix: "/private", Upstream: dead},
		{Prefix: "/public", Upstream: dead, Rules: []Rule{{Public: true}}},
	})
	tests := []struct {
		name, path, auth string
	}{
		{name: "authenticated", path: "/private/x", auth: "Bearer " + fx.mintFor(t, "alice")},
		{name: "public", path: "/public/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, g, http.MethodGet, tt.path, tt.auth, nil)
			if w.Code != http.StatusBadGateway {
				t.Fatalf("got %d %s, want 502", w.Code, w.Body)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("got Content-Type %q, want %q", got, "application/json")
			}
			if code := errorCode(t, w); code != "bad_gateway" {
				t.Errorf("got error %q, want %q", code, "bad_gateway")
			}
			if strings.Contains(w.Body.String(), ln.Addr().String()) {
				t.Errorf("body %s leaks the upstream address", w.Body)
			}
		})
	}
}

func TestBasicCredentialCache(t *testing.T) {
	alice := basicHeader("alice", testUsers["alice"].password)
	setup := func(t *testing.T) (*fixture, *Gateway, *upstream) {
		fx := newFixture(t)
		up := newUpstream(t, "svc")
		return fx, fx.gateway(t, []Route{{Prefix: "/api", Upstream: up.URL}}), up
	}
	get := func(t *testing.T, g *Gateway, auth string) int {
		return serve(t, g, http.MethodGet, "/api/x", auth, nil).Code
	}
	concurrently := func(t *testing.T, g *Gateway, n int, auth string) {
		start := make(chan struct{})
		codes := make(chan int, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				<-start
				r := httptest.NewRequest(http.MethodGet, "/api/x", nil)
				r.Header.Set("Authorization", auth)
				w := httptest.NewRecorder()
				g.ServeHTTP(w, r)
				codes <- w.Code
			})
		}
		close(start)
		wg.Wait()
		close(codes)
		for c := range codes {
			if c != http.StatusOK {
				t.Errorf("got %d, want 200", c)
			}
		}
	}

	t.Run("sequential_then_concurrent", func(t *testing.T) {
		fx, g, up := setup(t)
		for i := range 1000 {
			if c := get(t, g, alice); c != http.StatusOK {
				t.Fatalf("request %d: got %d, want 200", i, c)
			}
		}
		concurrently(t, g, 50, alice)
		if n := fx.grants.Load(); n != 1 {
			t.Errorf("got %d password grants, want 1", n)
		}
		if n := up.count(); n != 1050 {
			t.Errorf("got %d upstream requests, want 1050", n)
		}
	})
	t.Run("concurrent_cold", func(t *testing.T) {
		// A cold cache under a burst is where a check-then-act race would
		// let a second grant through; repeat to give it a chance.
		for round := range 20 {
			fx, g, _ := setup(t)
			concurrently(t, g, 50, alice)
			if n := fx.grants.Load(); n != 1 {
				t.Fatalf("round %d: got %d password grants, want 1", round, n)
			}
		}
	})
	t.Run("wrong_password_not_cached", func(t *testing.T) {
		fx, g, up := setup(t)
		wrong := basicHeader("alice", "not-her-password")
		steps := []struct {
			auth       string
			wantStatus int
			wantGrants int64
		}{
			{wrong, http.StatusUnauthorized, 1},
			{wrong, http.StatusUnauthorized, 2}, // a failure is asked again, never cached
			{alice, http.StatusOK, 3},
			{wrong, http.StatusUnauthorized, 4}, // alice's cached token is not reused for a wrong password
			{alice, http.StatusOK, 4},
			{basicHeader("alice", testUsers["alice"].password+"x"), http.StatusUnauthorized, 5},
			{basicHeader("alicex", testUsers["alice"].password), http.StatusUnauthorized, 6},
			{basicHeader("carol", testUsers["alice"].password), http.StatusUnauthorized, 7},
		}
		for i, s := range steps {
			if c := get(t, g, s.auth); c != s.wantStatus {
				t.Errorf("step %d: got %d, want %d", i, c, s.wantStatus)
			}
			if n := fx.grants.Load(); n != s.wantGrants {
				t.Errorf("step %d: got %d password grants, want %d", i, n, s.wantGrants)
			}
		}
		if n := up.count(); n != 2 {
			t.Errorf("got %d upstream requests, want 2", n)
		}
	})
	t.Run("users_kept_apart", func(t *testing.T) {
		fx, g, _ := setup(t)
		for _, name := range []string{"alice", "carol", "alice", "carol"} {
			w := serve(t, g, http.MethodGet, "/api/x", basicHeader(name, testUsers[name].password), nil)
			auth := decodeEcho(t, w).Header.Get("Authorization")
			p, err := fx.verifier.Verify(t.Context(), strings.TrimPrefix(auth, "Bearer "))
			if err != nil || p.Username != name {
				t.Errorf("got token for %+v (%v), want %s", p, err, name)
			}
		}
		if n := fx.grants.Load(); n != 2 {
			t.Errorf("got %d password grants, want 2", n)
		}
	})
	t.Run("entry_expires_before_token", func(t *testing.T) {
		fx, g, _ := setup(t)
		get(t, g, alice)
		// The token's exp is whole seconds (truncated) and the clock is the
		// wall clock plus an offset, so allow a second either way.
		fx.clock.Advance(5*time.Minute - 32*time.Second) // still cached: ~31-32s before expiry
		get(t, g, alice)
		if n := fx.grants.Load(); n != 1 {
			t.Errorf("before the margin: got %d password grants, want 1", n)
		}
		fx.clock.Advance(3 * time.Second) // ~28-29s before expiry: inside the 30s margin
		if c := get(t, g, alice); c != http.StatusOK {
			t.Errorf("got %d, want 200", c)
		}
		if n := fx.grants.Load(); n != 2 {
			t.Errorf("inside the margin: got %d password grants, want 2", n)
		}
	})
	t.Run("authorization_server_down", func(t *testing.T) {
		fx, g, up := setup(t)
		fx.tokenDown.Store(true)
		w := serve(t, g, http.MethodGet, "/api/x", alice, nil)
		if w.Code != http.StatusServiceUnavailable || errorCode(t, w) != oauth.ErrTemporarilyUnavailable {
			t.Errorf("got %d %s, want 503 temporarily_unavailable", w.Code, w.Body)
		}
		fx.tokenDown.Store(false)
		if c := get(t, g, alice); c != http.StatusOK {
			t.Errorf("after recovery: got %d, want 200", c)
		}
		if n := up.count(); n != 1 {
			t.Errorf("got %d upstream requests, want 1", n)
		}
	})
}

// TestResponseBodies pins the JSON the gateway answers with when it refuses
// a request, so the RFC 6750 shape cannot drift unnoticed.
func TestResponseBodies(t *testing.T) {
	fx := newFixture(t)
	up := newUpstream(t, "svc")
	g := fx.gateway(t, []Route{{Prefix: "/api", Upstream: up.URL, Rules: []Rule{{Roles: []string{"admin"}}}}})
	tests := []struct {
		name, path, auth string
		wantStatus       int
		wantBody         string
		wantChallenges   []string
	}{
		{name: "no_credentials", path: "/api", wantStatus: http.StatusUnauthorized,
			wantBody:       `{"error":"invalid_request","error_description":"credentials required"}`,
			wantChallenges: []string{`Bearer realm="gatehouse"`, `Basic realm="gatehouse", charset="UTF-8"`}},
		{name: "bad_token", path: "/api", auth: "Bearer x.y.z", wantStatus: http.StatusUnauthorized,
			wantBody: `{"error":"invalid_token","error_description":"the access token is invalid or expired"}`,
			wantChallenges: []string{`Bearer realm="gatehouse", error="invalid_token", error_description="the access token is invalid or expired"`,
				`Basic realm="gatehouse", charset="UTF-8"`}},
		{name: "bad_password", path: "/api", auth: basicHeader("alice", "nope"), wantStatus: http.StatusUnauthorized,
			wantBody:       `{"error":"invalid_grant","error_description":"invalid username or password"}`,
			wantChallenges: []string{`Bearer realm="gatehouse"`, `Basic realm="gatehouse", charset="UTF-8"`}},
		{name: "unknown_scheme", path: "/api", auth: "Digest x", wantStatus: http.StatusUnauthorized,
			wantBody:       `{"error":"invalid_request","error_description":"malformed or unsupported Authorization header"}`,
			wantChallenges: []string{`Bearer realm="gatehouse"`, `Basic realm="gatehouse", charset="UTF-8"`}},
		{name: "denied", path: "/api", auth: "Bearer " + fx.mintFor(t, "alice"), wantStatus: http.StatusForbidden,
			wantBody: `{"error":"access_denied","error_description":"access denied"}`},
		{name: "no_route", path: "/nope", wantStatus: http.StatusNotFound,
			wantBody: `{"error":"not_found","error_description":"no route"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, g, http.MethodGet, tt.path, tt.auth, nil)
			if w.Code != tt.wantStatus {
				t.Errorf("got status %d, want %d", w.Code, tt.wantStatus)
			}
			if got := strings.TrimSpace(w.Body.String()); got != tt.wantBody {
				t.Errorf("got body %s, want %s", got, tt.wantBody)
			}
			if got := w.Header().Values("WWW-Authenticate"); !slices.Equal(got, tt.wantChallenges) {
				t.Errorf("got WWW-Authenticate %q, want %q", got, tt.wantChallenges)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("got Cache-Control %q, want %q", got, "no-store")
			}
		})
	}
}
