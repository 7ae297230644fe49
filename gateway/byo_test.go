package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// These tests run the gateway against github.com/oauth2-proxy/mockoidc, an
// OpenID Connect provider written independently of Gatehouse, to prove that
// the gateway needs nothing but the standards: discovery, the JWKS, the
// token endpoint. What mockoidc needed from the gateway:
//
//   - Its access tokens are typed "JWT", not "at+jwt" (RFC 9068): the
//     gateway accepts them only with AccessTokenTypes ["at+jwt", "JWT"].
//   - Its token endpoint reads client credentials from the form only,
//     although its discovery document offers client_secret_basic too:
//     TokenEndpointAuthMethod "client_secret_post".
//   - Its access tokens carry no roles and no username; tokens with such
//     claims, under other names than ours, are signed below with mockoidc's
//     own key (Keypair.SignJWT) and published in its JWKS.
//   - It implements no password grant (only authorization_code and
//     refresh_token), which the Basic path needs: mockProvider puts a
//     password grant in front of its token endpoint that drives mockoidc's
//     own authorization endpoint and code exchange, so the tokens are still
//     minted and signed by mockoidc.

// byoUser is a user of the mock provider, with the password the password
// grant checks.
type byoUser struct {
	password string
	user     *mockoidc.MockUser
}

var byoUsers = map[string]byoUser{
	"jane": {password: "jane-password-1", user: &mockoidc.MockUser{Subject: "sub-jane", PreferredUsername: "jane",
		Email: "jane@example.test", Groups: []string{"engineering"}}},
}

// mockProvider is a running mockoidc with the password grant added.
type mockProvider struct {
	*mockoidc.MockOIDC
	// passwordGrants counts the password grants it answered.
	passwordGrants atomic.Int64
	// mu serializes requests: mockoidc's session store is a plain map.
	mu sync.Mutex
}

func startMockOIDC(t *testing.T) *mockProvider {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	mp := &mockProvider{MockOIDC: m}
	if err := m.AddMiddleware(mp.withPasswordGrant); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return mp
}

// withPasswordGrant answers grant_type=password at the token endpoint by
// authorizing the user at mockoidc's authorization endpoint and exchanging
// the code at its token endpoint, with the caller's client credentials.
func (mp *mockProvider) withPasswordGrant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mp.mu.Lock()
		defer mp.mu.Unlock()
		if r.URL.Path != mockoidc.TokenEndpoint || r.ParseForm() != nil || r.PostForm.Get("grant_type") != oauth.GrantPassword {
			next.ServeHTTP(w, r)
			return
		}
		mp.passwordGrants.Add(1)
		u, ok := byoUsers[r.PostForm.Get("username")]
		if !ok || u.password != r.PostForm.Get("password") {
			oauth.WriteError(w, oauth.Errorf(oauth.ErrInvalidGrant, "invalid username or password"))
			return
		}
		code, err := mp.authorize(u.user)
		if err != nil {
			oauth.WriteError(w, err)
			return
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"client_id": {r.PostForm.Get("client_id")}, "client_secret": {r.PostForm.Get("client_secret")}}
		exchange := httptest.NewRequestWithContext(r.Context(), http.MethodPost, mockoidc.TokenEndpoint, strings.NewReader(form.Encode()))
		exchange.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		next.ServeHTTP(w, exchange)
	})
}

// authorize logs user in at mockoidc's authorization endpoint and returns
// the code it redirects with.
func (mp *mockProvider) authorize(user mockoidc.User) (string, error) {
	mp.QueueUser(user)
	q := url.Values{"client_id": {mp.ClientID}, "scope": {"openid profile"}, "response_type": {"code"},
		"redirect_uri": {"http://127.0.0.1/callback"}, "state": {"s"}}
	w := httptest.NewRecorder()
	mp.Authorize(w, httptest.NewRequest(http.MethodGet, mockoidc.AuthorizationEndpoint+"?"+q.Encode(), nil))
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		return "", errors.New("mockoidc authorize: no code")
	}
	return loc.Query().Get("code"), nil
}

// codeFlowToken gets an access token the way a third-party client would:
// golang.org/x/oauth2 through mockoidc's authorization code flow.
func (mp *mockProvider) codeFlowToken(t *testing.T) string {
	t.Helper()
	conf := oauth2.Config{ClientID: mp.ClientID, ClientSecret: mp.ClientSecret, RedirectURL: "http://127.0.0.1/callback",
		Scopes:   []string{"openid", "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: mp.AuthorizationEndpoint(), TokenURL: mp.TokenEndpoint(), AuthStyle: oauth2.AuthStyleInParams}}
	mp.QueueUser(byoUsers["jane"].user)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(conf.AuthCodeURL("s"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	tok, err := conf.Exchange(t.Context(), loc.Query().Get("code"))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok.AccessToken
}

// signed returns a JWT signed by mockoidc's key (so its JWKS verifies it)
// with mockoidc's issuer and audience, and extra claims.
func (mp *mockProvider) signed(t *testing.T, extra jwt.MapClaims) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"iss": mp.Issuer(), "aud": mp.ClientID, "sub": "sub-jane",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for k, v := range extra {
		claims[k] = v
	}
	raw, err := mp.Keypair.SignJWT(claims)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// gateway returns a gateway that knows only mockoidc's issuer URL and its
// client: everything else comes from discovery.
func (mp *mockProvider) gateway(t *testing.T, routes []Route, mod ...func(*Config)) *Gateway {
	t.Helper()
	cfg := Config{Issuer: mp.Issuer(), Audience: []string{mp.ClientID}, ClientID: mp.ClientID, ClientSecret: mp.ClientSecret,
		TokenEndpointAuthMethod: oauth.AuthClientSecretPost, AccessTokenTypes: []string{"at+jwt", "JWT"},
		Routes: routes, Logger: slog.New(slog.DiscardHandler)}
	for _, m := range mod {
		m(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

// verifier checks what reached an upstream: a token of mockoidc.
func (mp *mockProvider) verifier(t *testing.T) *resource.Verifier {
	t.Helper()
	v, err := resource.NewVerifier(resource.Config{Issuer: mp.Issuer(), Audience: []string{mp.ClientID},
		AccessTokenTypes: []string{"JWT"}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestBringYourOwnAuthorizationServer(t *testing.T) {
	mp := startMockOIDC(t)
	up := newUpstream(t, "svc")
	routes := []Route{{Prefix: "/api", Upstream: up.URL}}
	jane := byoUsers["jane"]
	forwarded := func(t *testing.T, w *httptest.ResponseRecorder) *resource.Principal {
		t.Helper()
		if w.Code != http.StatusOK {
			t.Fatalf("got %d %s, want 200", w.Code, w.Body)
		}
		auth := decodeEcho(t, w).Header.Get("Authorization")
		p, err := mp.verifier(t).Verify(t.Context(), strings.TrimPrefix(auth, "Bearer "))
		if err != nil {
			t.Fatalf("forwarded %q: %v, want a token of mockoidc", auth, err)
		}
		return p
	}

	t.Run("bearer", func(t *testing.T) {
		g := mp.gateway(t, routes)
		token := mp.codeFlowToken(t)
		w := serve(t, g, http.MethodGet, "/api/x", "Bearer "+token, nil)
		if p := forwarded(t, w); p.Subject != jane.user.Subject || p.Token != token {
			t.Errorf("got %+v upstream, want jane's token as sent", p)
		}
	})
	t.Run("bearer_needs_type_opt_in", func(t *testing.T) {
		g := mp.gateway(t, routes, func(c *Config) { c.AccessTokenTypes = nil })
		w := serve(t, g, http.MethodGet, "/api/x", "Bearer "+mp.codeFlowToken(t), nil)
		if w.Code != http.StatusUnauthorized || errorCode(t, w) != oauth.ErrInvalidToken {
			t.Errorf("got %d %s, want 401 invalid_token for a token typed JWT by default", w.Code, w.Body)
		}
	})
	t.Run("basic", func(t *testing.T) {
		g := mp.gateway(t, routes)
		before := mp.passwordGrants.Load()
		for i := range 20 {
			w := serve(t, g, http.MethodGet, "/api/x", basicHeader("jane", jane.password), nil)
			if p := forwarded(t, w); p.Subject != jane.user.Subject {
				t.Fatalf("request %d: got subject %q upstream, want %q", i, p.Subject, jane.user.Subject)
			}
		}
		if n := mp.passwordGrants.Load() - before; n != 1 {
			t.Errorf("got %d password grants for 20 requests, want 1 (cached)", n)
		}
	})
	t.Run("basic_wrong_password", func(t *testing.T) {
		g := mp.gateway(t, routes)
		before := mp.passwordGrants.Load()
		for range 2 {
			w := serve(t, g, http.MethodGet, "/api/x", basicHeader("jane", "nope"), nil)
			if w.Code != http.StatusUnauthorized || errorCode(t, w) != oauth.ErrInvalidGrant {
				t.Fatalf("got %d %s, want 401 invalid_grant", w.Code, w.Body)
			}
		}
		if n := mp.passwordGrants.Load() - before; n != 2 {
			t.Errorf("got %d password grants for 2 refused requests, want 2 (failures are not cached)", n)
		}
	})
	t.Run("basic_needs_client_secret_post", func(t *testing.T) {
		g := mp.gateway(t, routes, func(c *Config) { c.TokenEndpointAuthMethod = "" })
		w := serve(t, g, http.MethodGet, "/api/x", basicHeader("jane", jane.password), nil)
		if w.Code == http.StatusOK {
			t.Errorf("got 200 with client_secret_basic, which mockoidc ignores; the opt-in above proves nothing")
		}
	})
}

// TestClaimNames: the gateway reads roles and the username from the claims
// the operator names, in tokens signed by mockoidc's key; the same rule
// admits and denies by them.
func TestClaimNames(t *testing.T) {
	mp := startMockOIDC(t)
	up := newUpstream(t, "svc")
	routes := []Route{{Prefix: "/admin", Upstream: up.URL, Rules: []Rule{{Roles: []string{"admin"}}}}}
	tests := []struct {
		name, rolesClaim, usernameClaim string
		claims                          jwt.MapClaims
		wantStatus                      int
		wantUsername                    string
	}{
		{name: "groups_admin", rolesClaim: "groups", usernameClaim: "email",
			claims:     jwt.MapClaims{"groups": []string{"admin"}, "email": "jane@example.test", "roles": []string{"user"}},
			wantStatus: http.StatusOK, wantUsername: "jane@example.test"},
		{name: "groups_without_admin", rolesClaim: "groups", usernameClaim: "email",
			claims:     jwt.MapClaims{"groups": []string{"engineering"}, "roles": []string{"admin"}}, // "roles" is not read
			wantStatus: http.StatusForbidden},
		{name: "nested_keycloak_roles", rolesClaim: "realm_access.roles", usernameClaim: "preferred_username",
			claims:     jwt.MapClaims{"realm_access": map[string]any{"roles": []string{"admin"}}, "preferred_username": "jane"},
			wantStatus: http.StatusOK, wantUsername: "jane"},
		{name: "space_separated_string", rolesClaim: "groups",
			claims:     jwt.MapClaims{"groups": "ops admin"},
			wantStatus: http.StatusOK},
		{name: "default_names", claims: jwt.MapClaims{"roles": []string{"admin"}, "preferred_username": "jane"},
			wantStatus: http.StatusOK, wantUsername: "jane"},
		{name: "default_names_ignore_groups", claims: jwt.MapClaims{"groups": []string{"admin"}},
			wantStatus: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := mp.gateway(t, routes, func(c *Config) { c.RolesClaim, c.UsernameClaim = tt.rolesClaim, tt.usernameClaim })
			token := mp.signed(t, tt.claims)
			w := serve(t, g, http.MethodGet, "/admin", "Bearer "+token, nil)
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
			p, err := g.verify.Verify(context.Background(), token)
			if err != nil || p.Username != tt.wantUsername {
				t.Errorf("got principal %+v (%v), want username %q", p, err, tt.wantUsername)
			}
		})
	}
}
