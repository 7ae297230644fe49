package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/outbound"
	"github.com/gatehouse-dev/gatehouse/resource"
	"github.com/gatehouse-dev/gatehouse/ssf"
)

const webRedirect = "https://web.example/callback"

// disableEnv is a fixture with clients whose tokens a test disables, an
// introspecting resource server "rs", and a resource.Verifier (audiences
// "api" and "orders", the exchange target) that follows the server's events
// through an SSF receiver, as services do.
type disableEnv struct {
	*fixture
	secrets  map[string]string
	verifier *resource.Verifier
	alice    store.User
}

func newDisableEnv(t *testing.T, st store.Store) *disableEnv {
	f := newFixture(t, fixtureOptions{store: st})
	e := &disableEnv{fixture: f, secrets: map[string]string{}}
	e.alice = f.addUser("alice", "alice-password")
	for _, spec := range []accounts.ClientSpec{
		{ID: "web", Grants: []string{oauth.GrantPassword, oauth.GrantRefreshToken, oauth.GrantAuthorizationCode},
			RedirectURIs: []string{webRedirect}},
		{ID: "mobile", Grants: []string{oauth.GrantPassword, oauth.GrantRefreshToken}, AccessTokenFormat: store.FormatOpaque},
		{ID: "svc", Grants: []string{oauth.GrantClientCredentials}},
		{ID: "other", Grants: []string{oauth.GrantPassword}},
		{ID: "rs", Grants: []string{oauth.GrantClientCredentials}},
		{ID: "exch", Grants: []string{oauth.GrantTokenExchange}, ExchangeAudiences: []string{"orders"}},
	} {
		e.secrets[spec.ID] = f.addClient(spec)
	}
	f.runServer()
	const rcvID = "rcv"
	rcvSecret := f.addClient(accounts.ClientSpec{ID: rcvID, Grants: []string{oauth.GrantClientCredentials},
		Scopes: []string{ScopeSSFManage}, Audience: []string{f.srv.Issuer()}})
	rcv, err := ssf.New(ssf.Config{Issuer: f.srv.Issuer(), Audience: rcvID, Now: f.clock.Now,
		Token: &outbound.ClientCredentials{TokenURL: f.srv.TokenURL(), ClientID: rcvID, ClientSecret: rcvSecret,
			Scopes: []string{ScopeSSFManage}, Now: f.clock.Now}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rcv.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	e.verifier, err = resource.NewVerifier(resource.Config{Issuer: f.srv.Issuer(), Audience: []string{"api", "orders"},
		Revocations: rcv, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newCode stores an authorization code the user was just issued for the
// client, with a PKCE challenge, and returns the form that redeems it.
func (f *fixture) newCode(clientID, userID, redirectURI string) url.Values {
	f.t.Helper()
	code, verifier := keyring.RandomToken(32), keyring.RandomToken(32)
	sum := sha256.Sum256([]byte(verifier))
	now := f.clock.Now().UTC()
	err := f.store.CreateAuthCode(f.t.Context(), store.AuthCode{Hash: f.srv.codeHasher.Hash(code), ClientID: clientID,
		UserID: userID, RedirectURI: redirectURI, CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]),
		CodeChallengeMethod: pkceS256, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(authCodeTTL)})
	if err != nil {
		f.t.Fatal(err)
	}
	return url.Values{"grant_type": {oauth.GrantAuthorizationCode}, "code": {code},
		"redirect_uri": {redirectURI}, "code_verifier": {verifier}}
}

// tokens are what a login or a client_credentials grant returned.
type tokens struct{ access, refresh string }

func (e *disableEnv) login(client string) tokens {
	e.t.Helper()
	r := e.passwordGrant(client, e.secrets[client], "alice", "alice-password")
	if r.status != http.StatusOK {
		e.t.Fatalf("login at %s: got %d %v, want 200", client, r.status, r.body)
	}
	return tokens{r.str("access_token"), r.str("refresh_token")}
}

func (e *disableEnv) clientToken(client string) tokens {
	e.t.Helper()
	r := e.token(url.Values{"grant_type": {oauth.GrantClientCredentials}}, client, e.secrets[client])
	if r.status != http.StatusOK {
		e.t.Fatalf("client_credentials for %s: got %d %v, want 200", client, r.status, r.body)
	}
	return tokens{access: r.str("access_token")}
}

func (e *disableEnv) setDisabled(client string, disabled bool) {
	e.t.Helper()
	if _, err := e.admin().SetClientDisabled(e.t.Context(), client, disabled); err != nil {
		e.t.Fatalf("SetClientDisabled(%s, %v): %v", client, disabled, err)
	}
}

// agree checks that the SSF receiver's verifier accepts the JWT exactly
// when introspection says it is active, waiting up to 5 s for the
// receiver to get the events, and returns that answer.
func (e *disableEnv) agree(jwt string) bool {
	e.t.Helper()
	introspected := e.introspect("rs", jwt)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := e.verifier.Verify(e.t.Context(), jwt)
		if accepted := err == nil; accepted == introspected {
			return introspected
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("introspection says active=%v, the receiver's verifier: %v", introspected, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDisabledClientTokens: disabling a client revokes every token issued
// to it — access tokens (JWT and opaque) are inactive at introspection, its
// refresh tokens cannot be used, token exchange refuses them — and enabling
// it again brings none of them back, just as SSF receivers keep refusing
// them. Other clients' tokens are untouched.
func TestDisabledClientTokens(t *testing.T) {
	for _, kind := range storeKinds() {
		t.Run(kind, func(t *testing.T) {
			e := newDisableEnv(t, openStore(t, kind))
			web, mobile, svc, other := e.login("web"), e.login("mobile"), e.clientToken("svc"), e.login("other")
			code := e.newCode("web", e.alice.ID, webRedirect) // issued, not yet redeemed
			for _, at := range []string{web.access, mobile.access, svc.access, other.access} {
				if !e.introspect("rs", at) {
					t.Fatalf("before the disabling: got an inactive access token, want all active")
				}
			}
			if !e.introspect("mobile", mobile.refresh) {
				t.Fatalf("before the disabling: got mobile's refresh token inactive, want active")
			}

			for _, c := range []string{"web", "mobile", "svc"} {
				e.setDisabled(c, true)
			}
			checks := []struct {
				name   string
				token  string
				active bool
			}{
				{"web JWT", web.access, false},
				{"mobile opaque", mobile.access, false},
				{"svc JWT (client_credentials)", svc.access, false},
				{"other client's JWT", other.access, true},
			}
			for _, c := range checks {
				if got := e.introspect("rs", c.token); got != c.active {
					t.Errorf("%s after the disabling: got active=%v, want %v", c.name, got, c.active)
				}
			}
			for _, jwt := range []string{web.access, svc.access, other.access} {
				e.agree(jwt)
			}
			if r := e.refresh("web", web.refresh); r.status != http.StatusUnauthorized || r.str("error") != oauth.ErrInvalidClient {
				t.Errorf("refresh at the disabled client: got %d %v, want 401 invalid_client", r.status, r.body)
			}
			if r := e.clientTokenResponse("svc"); r.str("error") != oauth.ErrInvalidClient {
				t.Errorf("client_credentials of the disabled client: got %d %v, want invalid_client", r.status, r.body)
			}
			if r := e.exchange(web.access); r.status != http.StatusBadRequest || r.str("error") != oauth.ErrInvalidRequest {
				t.Errorf("exchange of the disabled client's token: got %d %v, want 400 invalid_request (RFC 8693 §2.2.2)", r.status, r.body)
			}
			if r := e.exchange(other.access); r.status != http.StatusOK {
				t.Errorf("exchange of another client's token: got %d %v, want 200", r.status, r.body)
			}

			// Enabled again: what was revoked stays revoked; new tokens work.
			e.clock.Advance(time.Second) // past the second of the disabling (iat has whole seconds)
			for _, c := range []string{"web", "mobile", "svc"} {
				e.setDisabled(c, false)
			}
			for _, c := range checks[:3] {
				if e.introspect("rs", c.token) {
					t.Errorf("%s after enabling again: got active, want inactive", c.name)
				}
			}
			if e.introspect("mobile", mobile.refresh) {
				t.Errorf("mobile's refresh token after enabling again: got active, want inactive")
			}
			for _, c := range []struct{ client, rt string }{{"web", web.refresh}, {"mobile", mobile.refresh}} {
				if r := e.refresh(c.client, c.rt); r.status != http.StatusBadRequest || r.str("error") != oauth.ErrInvalidGrant {
					t.Errorf("refresh at %s enabled again: got %d %v, want 400 invalid_grant", c.client, r.status, r.body)
				}
			}
			if r := e.exchange(web.access); r.str("error") != oauth.ErrInvalidRequest {
				t.Errorf("exchange of a revoked token after enabling again: got %d %v, want invalid_request", r.status, r.body)
			}
			if r := e.token(code, "web", e.secrets["web"]); r.str("error") != oauth.ErrInvalidGrant {
				t.Errorf("code issued before the disabling, redeemed after enabling again: got %d %v, want invalid_grant", r.status, r.body)
			}
			fresh, freshMobile, freshSvc := e.login("web"), e.login("mobile"), e.clientToken("svc")
			for _, at := range []string{fresh.access, freshMobile.access, freshSvc.access} {
				if !e.introspect("rs", at) {
					t.Errorf("token issued after enabling again: got inactive, want active")
				}
			}
			if !e.agree(fresh.access) || e.agree(web.access) {
				t.Errorf("receiver: want the new JWT accepted and the old one refused")
			}
			if r := e.refresh("web", fresh.refresh); r.status != http.StatusOK {
				t.Errorf("refresh of a token issued after enabling again: got %d %v, want 200", r.status, r.body)
			}
		})
	}
}

// introspect introspects token as client and reports "active".
func (e *disableEnv) introspect(client, token string) bool {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.Issuer()+pathIntrospect, strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, e.secrets[client])
	resp, err := e.public.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("introspect as %s: got %d %v (%v), want 200", client, resp.StatusCode, body, err)
	}
	return body["active"] == true
}

func (e *disableEnv) refresh(client, rt string) tokenResponse {
	e.t.Helper()
	return e.token(url.Values{"grant_type": {oauth.GrantRefreshToken}, "refresh_token": {rt}}, client, e.secrets[client])
}

func (e *disableEnv) clientTokenResponse(client string) tokenResponse {
	e.t.Helper()
	return e.token(url.Values{"grant_type": {oauth.GrantClientCredentials}}, client, e.secrets[client])
}

func (e *disableEnv) exchange(subject string) tokenResponse {
	e.t.Helper()
	return e.token(url.Values{"grant_type": {oauth.GrantTokenExchange}, "subject_token": {subject},
		"subject_token_type": {TokenTypeAccessToken}, "audience": {"orders"}}, "exch", e.secrets["exch"])
}

// A record read from the store before an invalidation is not cached after
// it: a client disabled through this server's Admin is refused at once,
// even by a request that was reading the client meanwhile.
func TestClientCacheKeepsOutReadsOlderThanAnInvalidation(t *testing.T) {
	st := &slowClientStore{Store: openStore(t, "sqlite"), reading: make(chan struct{}), proceed: make(chan struct{})}
	if err := st.CreateClient(t.Context(), store.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	clock := newTestClock()
	cache := newClientCache(st, clock.Now)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := cache.get(t.Context(), "c"); err != nil {
			t.Errorf("get: %v", err)
		}
	})
	<-st.reading // the read has the record as it was
	if _, err := st.UpdateClient(t.Context(), "c", func(c *store.Client) error { c.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	cache.invalidate()
	close(st.proceed)
	wg.Wait()
	c, err := cache.get(t.Context(), "c")
	if err != nil || !c.Disabled {
		t.Fatalf("get after the invalidation: got %+v, %v, want the disabled client", c, err)
	}
	if _, err := cache.get(t.Context(), "nobody"); !errors.Is(err, store.ErrNotFound) || len(cache.entries) != 1 {
		t.Fatalf("unknown client: got %v and %d entries, want ErrNotFound and nothing cached", err, len(cache.entries))
	}
}

// slowClientStore's first GetClient reads the record, signals reading and
// waits for proceed before returning it.
type slowClientStore struct {
	store.Store
	once             sync.Once
	reading, proceed chan struct{}
}

func (s *slowClientStore) GetClient(ctx context.Context, id string) (store.Client, error) {
	c, err := s.Store.GetClient(ctx, id)
	s.once.Do(func() {
		close(s.reading)
		<-s.proceed
	})
	return c, err
}

// A session revoked through the admin API — one, or all of a user's, as a
// password change or disabling the user does — ends its JWT access tokens
// at introspection too, as at the receivers of its session-revoked event.
func TestAdminSessionRevocationAtIntrospection(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(e *disableEnv, sid string) error
	}{
		{"one session", func(e *disableEnv, sid string) error { return e.admin().RevokeSession(e.t.Context(), "alice", sid) }},
		{"all sessions", func(e *disableEnv, _ string) error {
			_, err := e.admin().RevokeSessions(e.t.Context(), "alice")
			return err
		}},
		{"password set", func(e *disableEnv, _ string) error {
			return e.admin().SetPassword(e.t.Context(), "alice", "new-password-1")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newDisableEnv(t, openStore(t, "sqlite"))
			web, other := e.login("web"), e.login("web")
			rt, err := e.store.GetRefreshToken(t.Context(), e.srv.refreshHasher.Hash(web.refresh))
			if err != nil {
				t.Fatal(err)
			}
			if !e.agree(web.access) {
				t.Fatalf("before the revocation: got the JWT inactive, want active")
			}
			if err := tt.revoke(e, rt.FamilyID); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			if e.agree(web.access) {
				t.Errorf("JWT of the revoked session: got active, want inactive at introspection and the receiver")
			}
			if want := tt.name == "one session"; e.agree(other.access) != want {
				t.Errorf("JWT of the user's other session: got active=%v, want %v", !want, want)
			}
		})
	}
}
