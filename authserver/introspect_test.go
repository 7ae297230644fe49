package authserver_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const exchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"

// standardClients registers:
//   - web: password and refresh_token, JWT access tokens, scopes orders and profile;
//   - mobile: like web, with opaque access tokens;
//   - svc: client_credentials, opaque access tokens living 2 minutes;
//   - rs: a resource server that only introspects.
func standardClients(e *tokenEnv) {
	e.client(accounts.ClientSpec{ID: "web", Grants: []string{"password", "refresh_token"}, Scopes: []string{"orders", "profile"}})
	e.client(accounts.ClientSpec{ID: "mobile", Grants: []string{"password", "refresh_token"}, Scopes: []string{"orders"},
		AccessTokenFormat: store.FormatOpaque})
	e.client(accounts.ClientSpec{ID: "svc", Grants: []string{"client_credentials"}, Scopes: []string{"orders"},
		Audience: []string{"orders-api"}, AccessTokenFormat: store.FormatOpaque, AccessTokenTTL: 2 * time.Minute})
	e.client(accounts.ClientSpec{ID: "rs", Grants: []string{"client_credentials"}})
}

func TestOpaqueAccessToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, nil)
		standardClients(e)
		tok := e.clientToken("svc", "orders")
		raw := tok.AccessToken
		if strings.Contains(raw, ".") || len(raw) < 43 {
			t.Fatalf("got access token %q, want an opaque token of at least 43 characters", raw)
		}
		if got := time.Until(tok.Expiry).Round(time.Minute); got != 2*time.Minute {
			t.Errorf("got expires_in ≈ %v, want the client's 2m", got)
		}
		// Stored only as its keyed hash.
		if _, err := st.GetAccessToken(t.Context(), raw); err == nil {
			t.Errorf("GetAccessToken(plain token): got a record, want the token stored only hashed")
		}
		if _, err := st.GetAccessToken(t.Context(), e.Keyring.Hasher(keyring.PurposeAccessToken).Hash(raw)); err != nil {
			t.Errorf("GetAccessToken(keyed hash): got error %v, want the record", err)
		}

		r := e.introspect("rs", raw, "access_token")
		now := e.Clock.Now().Unix()
		want := map[string]any{"active": true, "client_id": "svc", "sub": "svc", "scope": "orders",
			"token_type": "Bearer", "token_use": "access_token", "iss": e.URL, "aud": "orders-api",
			"iat": float64(now), "exp": float64(now + 120)}
		for k, v := range want {
			if r.body[k] != v {
				t.Errorf("introspection %s: got %v, want %v (body %s)", k, r.body[k], v, r.raw)
			}
		}
		if r.str("jti") == "" {
			t.Errorf("introspection: got no jti, want one")
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control: got %q, want no-store", cc)
		}

		e.Clock.Advance(119 * time.Second)
		if !e.active("rs", raw) {
			t.Fatalf("1s before expiry: got inactive, want active")
		}
		e.Clock.Advance(time.Second)
		r = e.introspect("rs", raw, "")
		if r.raw != "{\"active\":false}\n" {
			t.Errorf("at expiry: got %s, want only {\"active\":false}", r.raw)
		}
	})
}

func TestIntrospection(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, nil)
		standardClients(e)
		alice := e.user("alice", "consumer", "admin")
		web := e.login("web", "alice", "orders")
		mobile := e.login("mobile", "alice")
		svc := e.clientToken("svc")
		foreign := foreignJWT(t, e)

		tests := []struct {
			name, client, token, hint string
			want                      map[string]any // nil: inactive
		}{
			{"JWT of a user", "rs", web.AccessToken, "", map[string]any{
				"client_id": "web", "sub": alice.ID, "username": "alice", "scope": "orders", "token_type": "Bearer",
				"aud": "api", "iss": e.URL, "roles": []any{"consumer", "admin"}}},
			{"JWT with the refresh_token hint", "rs", web.AccessToken, "refresh_token", map[string]any{"client_id": "web"}},
			{"JWT introspected by the client it was issued to", "web", web.AccessToken, "", map[string]any{"client_id": "web"}},
			{"opaque token of a user", "rs", mobile.AccessToken, "", map[string]any{
				"client_id": "mobile", "sub": alice.ID, "username": "alice", "scope": "orders", "token_type": "Bearer"}},
			{"opaque token of another client", "web", svc.AccessToken, "", map[string]any{"client_id": "svc", "sub": "svc"}},
			{"refresh token by its client", "web", web.RefreshToken, "refresh_token", map[string]any{
				"client_id": "web", "sub": alice.ID, "username": "alice", "scope": "orders",
				"token_use": "refresh_token", "token_type": nil, "jti": nil}},
			{"refresh token without hint", "web", web.RefreshToken, "", map[string]any{"token_use": "refresh_token"}},
			{"refresh token with an unknown hint", "web", web.RefreshToken, "id_token", map[string]any{"token_use": "refresh_token"}},
			{"refresh token by another client", "rs", web.RefreshToken, "refresh_token", nil},
			{"garbage", "rs", "garbage", "", nil},
			{"three dots", "rs", "a.b.c", "", nil},
			{"JWT of another issuer", "rs", foreign, "", nil},
			{"tampered JWT", "rs", web.AccessToken[:len(web.AccessToken)-4] + "AAAA", "", nil},
			{"huge", "rs", strings.Repeat("x", 20000), "", nil},
			{"unicode", "rs", "☃\x00\xff", "", nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := e.introspect(tt.client, tt.token, tt.hint)
				if r.status != http.StatusOK {
					t.Fatalf("got status %d (%s), want 200", r.status, r.raw)
				}
				if tt.want == nil {
					if len(r.body) != 1 || r.body["active"] != false {
						t.Fatalf("got %s, want only {\"active\": false}", r.raw)
					}
					return
				}
				if r.body["active"] != true {
					t.Fatalf("got %s, want active", r.raw)
				}
				for k, v := range tt.want {
					if !equalJSON(r.body[k], v) {
						t.Errorf("%s: got %v, want %v", k, r.body[k], v)
					}
				}
			})
		}
	})
}

func TestIntrospectionInactive(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, nil)
		standardClients(e)
		e.user("alice")
		e.user("bob")
		alice := e.login("web", "alice")
		bob := e.login("mobile", "bob")
		if !e.active("rs", alice.AccessToken) || !e.active("rs", bob.AccessToken) {
			t.Fatalf("fresh tokens: got inactive, want active")
		}
		if err := e.m.SetDisabled(t.Context(), "bob", true); err != nil {
			t.Fatal(err)
		}
		if e.active("rs", bob.AccessToken) || e.active("mobile", bob.RefreshToken) {
			t.Errorf("tokens of a disabled user: got active, want inactive")
		}
		// A JWT is inactive from its exp on, with no leeway.
		e.Clock.Advance(5*time.Minute - time.Second)
		if !e.active("rs", alice.AccessToken) {
			t.Fatalf("JWT 1s before exp: got inactive, want active")
		}
		e.Clock.Advance(time.Second)
		if e.active("rs", alice.AccessToken) {
			t.Errorf("JWT at exp: got active, want inactive")
		}
		e.Clock.Advance(time.Hour)
		if e.active("rs", alice.AccessToken) {
			t.Errorf("JWT an hour after exp: got active, want inactive")
		}
	})
}

func TestIntrospectionErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, nil)
		standardClients(e)
		tok := e.clientToken("svc")
		for _, path := range []string{"/oauth2/introspect", "/oauth2/revoke"} {
			tests := []struct {
				name      string
				req       func() *http.Request
				status    int
				code      string
				challenge bool
			}{
				{"no client authentication", func() *http.Request {
					return postForm(t, e.URL+path, url.Values{"token": {tok.AccessToken}})
				}, 401, oauth.ErrInvalidClient, true},
				{"wrong secret", func() *http.Request {
					r := postForm(t, e.URL+path, url.Values{"token": {tok.AccessToken}})
					r.SetBasicAuth("rs", "wrong-secret-0123456789")
					return r
				}, 401, oauth.ErrInvalidClient, true},
				{"unknown client in the body", func() *http.Request {
					return postForm(t, e.URL+path, url.Values{"token": {tok.AccessToken}, "client_id": {"nobody"}, "client_secret": {"x"}})
				}, 401, oauth.ErrInvalidClient, false},
				{"missing token", func() *http.Request {
					r := postForm(t, e.URL+path, url.Values{"token_type_hint": {"access_token"}})
					r.SetBasicAuth("rs", e.secrets["rs"])
					return r
				}, 400, oauth.ErrInvalidRequest, false},
				{"empty token", func() *http.Request {
					r := postForm(t, e.URL+path, url.Values{"token": {""}})
					r.SetBasicAuth("rs", e.secrets["rs"])
					return r
				}, 400, oauth.ErrInvalidRequest, false},
				{"repeated token", func() *http.Request {
					r := postForm(t, e.URL+path, url.Values{"token": {tok.AccessToken, "x"}})
					r.SetBasicAuth("rs", e.secrets["rs"])
					return r
				}, 400, oauth.ErrInvalidRequest, false},
				{"JSON body", func() *http.Request {
					r := postForm(t, e.URL+path, nil)
					r.Header.Set("Content-Type", "application/json")
					r.SetBasicAuth("rs", e.secrets["rs"])
					return r
				}, 400, oauth.ErrInvalidRequest, false},
				{"body too large", func() *http.Request {
					r := postForm(t, e.URL+path, url.Values{"token": {strings.Repeat("A", 70<<10)}})
					r.SetBasicAuth("rs", e.secrets["rs"])
					return r
				}, 413, oauth.ErrInvalidRequest, false},
				{"GET", func() *http.Request {
					r, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.URL+path+"?token="+tok.AccessToken, nil)
					r.SetBasicAuth("rs", e.secrets["rs"])
					return r
				}, 405, oauth.ErrInvalidRequest, false},
			}
			for _, tt := range tests {
				t.Run(path+" "+tt.name, func(t *testing.T) {
					r := e.do(tt.req())
					if r.status != tt.status || r.str("error") != tt.code {
						t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tt.status, tt.code)
					}
					if got := r.header.Get("WWW-Authenticate") != ""; got != tt.challenge {
						t.Errorf("WWW-Authenticate %q: got present %v, want %v", r.header.Get("WWW-Authenticate"), got, tt.challenge)
					}
					if cc := r.header.Get("Cache-Control"); cc != "no-store" {
						t.Errorf("Cache-Control: got %q, want no-store", cc)
					}
				})
			}
		}
		if !e.active("rs", tok.AccessToken) {
			t.Errorf("after the failed requests: got the token inactive, want it untouched")
		}
	})
}

func TestDiscoveryNamesIntrospectionRevocationAndExchange(t *testing.T) {
	st := openSQLite(t)
	e := newTokenEnv(t, st, nil)
	r := e.do(get(t, e.URL+"/.well-known/oauth-authorization-server"))
	want := map[string]any{
		"introspection_endpoint":                        e.URL + "/oauth2/introspect",
		"revocation_endpoint":                           e.URL + "/oauth2/revoke",
		"introspection_endpoint_auth_methods_supported": r.body["token_endpoint_auth_methods_supported"],
		"revocation_endpoint_auth_methods_supported":    r.body["token_endpoint_auth_methods_supported"],
	}
	for k, v := range want {
		if !equalJSON(r.body[k], v) || v == nil {
			t.Errorf("%s: got %v, want %v", k, r.body[k], v)
		}
	}
	grants, _ := r.body["grant_types_supported"].([]any)
	if !slices.Contains(grants, any(exchangeGrant)) {
		t.Errorf("grant_types_supported: got %v, want it to include %s", grants, exchangeGrant)
	}
	claims, _ := r.body["claims_supported"].([]any)
	if !slices.Contains(claims, any("act")) {
		t.Errorf("claims_supported: got %v, want it to include act", claims)
	}
}

// foreignJWT is a well-formed access token for "api" signed by a key the
// server does not know, with the server's issuer.
func foreignJWT(t *testing.T, e *tokenEnv) string {
	t.Helper()
	k, err := jose.GenerateKey(jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	now := e.Clock.Now()
	raw, err := jose.Sign(k, jose.TypeAccessToken, jose.Claims{Issuer: e.URL, Subject: "mallory", Audience: jose.Audience{"api"},
		IssuedAt: jose.NewNumericDate(now), Expiry: jose.NewNumericDate(now.Add(time.Hour)), ID: "forged", ClientID: "web"})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
