package authserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func TestAdminAPIRefusesWithoutTheToken(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	paths := []string{"/v1/users", "/v1/clients", "/v1/keys", "/v1/users/alice/sessions", "/v1/nothing"}
	for _, p := range paths {
		for _, auth := range []string{"", "Bearer wrong-token", "Bearer " + testAdminToken + "x", "Basic " + testAdminToken, testAdminToken} {
			status, body := get(t, f.adminSrv, p, "Authorization", auth)
			if status != http.StatusUnauthorized || !strings.Contains(body, `"unauthorized"`) {
				t.Errorf("GET %s with Authorization %q: got %d %s, want 401 unauthorized", p, auth, status, body)
			}
		}
	}
	_, err := (&adminapi.Remote{URL: f.adminSrv.URL, Token: "wrong"}).ListUsers(t.Context())
	if !errors.Is(err, adminapi.ErrUnauthorized) {
		t.Fatalf("Remote with a wrong token: got %v, want ErrUnauthorized", err)
	}
}

func TestAdminAPIWithoutConfiguredTokenRefusesAll(t *testing.T) {
	f := newFixture(t, fixtureOptions{config: func(c *Config) { c.AdminToken = "" }})
	for _, auth := range []string{"", "Bearer ", "Bearer x"} {
		if status, _ := get(t, f.adminSrv, "/v1/users", "Authorization", auth); status != http.StatusUnauthorized {
			t.Errorf("Authorization %q: got %d, want 401", auth, status)
		}
	}
}

func TestPublicListenerDoesNotServeAdminPaths(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, p := range []string{"/v1/users", "/v1/clients", "/v1/keys", "/v1/keys/rotate", "/metrics"} {
		status, _ := get(t, f.public, p, "Authorization", "Bearer "+testAdminToken)
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			t.Errorf("public GET %s: got %d, want 404", p, status)
		}
	}
}

func TestAdminAPIUsers(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	a, ctx := f.admin(), t.Context()
	u, err := a.CreateUser(ctx, adminapi.NewUser{Username: "alice", Password: "alice-password", Roles: []string{"consumer"}})
	if err != nil || u.Username != "alice" || u.ID == "" || !slices.Equal(u.Roles, []string{"consumer"}) {
		t.Fatalf("create: got %+v, %v", u, err)
	}
	if _, err := a.CreateUser(ctx, adminapi.NewUser{Username: "alice", Password: "alice-password"}); !errors.Is(err, adminapi.ErrConflict) {
		t.Fatalf("create twice: got %v, want ErrConflict", err)
	}
	if _, err := a.CreateUser(ctx, adminapi.NewUser{Username: "bob", Password: "short"}); !errors.Is(err, adminapi.ErrInvalid) {
		t.Fatalf("create with a short password: got %v, want ErrInvalid", err)
	}
	users, err := a.ListUsers(ctx)
	if err != nil || len(users) != 1 || users[0].ID != u.ID {
		t.Fatalf("list: got %+v, %v", users, err)
	}
	if _, err := a.GetUser(ctx, "nobody"); !errors.Is(err, adminapi.ErrNotFound) {
		t.Fatalf("get unknown: got %v, want ErrNotFound", err)
	}
	if u, err = a.SetRoles(ctx, "alice", []string{"admin", "consumer"}); err != nil || !slices.Equal(u.Roles, []string{"admin", "consumer"}) {
		t.Fatalf("set roles: got %+v, %v", u, err)
	}
	if err := a.SetPassword(ctx, "alice", "new-alice-password"); err != nil {
		t.Fatalf("set password: %v", err)
	}
	stored, _ := f.store.GetUser(ctx, "alice")
	if ok, _, _ := password.Verify("new-alice-password", stored.PasswordHash, cheapParams); !ok {
		t.Fatalf("set password: the stored hash does not match the new password")
	}
	if u, err = a.SetUserDisabled(ctx, "alice", true); err != nil || !u.Disabled {
		t.Fatalf("disable: got %+v, %v", u, err)
	}
	if u, err = a.SetUserDisabled(ctx, "alice", false); err != nil || u.Disabled {
		t.Fatalf("enable: got %+v, %v", u, err)
	}
	// The admin API never shows a password hash.
	status, body := get(t, f.adminSrv, "/v1/users", "Authorization", "Bearer "+testAdminToken)
	if status != 200 || strings.Contains(body, "argon2") || strings.Contains(body, stored.PasswordHash) {
		t.Fatalf("GET /v1/users: got %d %s, want no password hash", status, body)
	}
}

func TestAdminAPIClients(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	a, ctx := f.admin(), t.Context()
	cc, err := a.CreateClient(ctx, adminapi.NewClient{ID: "billing", Grants: []string{oauth.GrantClientCredentials}, Scopes: []string{"orders"}})
	if err != nil || len(cc.Secret) < 43 || cc.Client.ID != "billing" {
		t.Fatalf("create: got %+v, %v, want a 256-bit secret", cc, err)
	}
	if tok := f.clientToken("billing", cc.Secret); tok == "" {
		t.Fatalf("the secret shown once does not authenticate")
	}
	got, err := a.GetClient(ctx, "billing")
	if err != nil || got.ID != "billing" {
		t.Fatalf("get: got %+v, %v", got, err)
	}
	status, body := get(t, f.adminSrv, "/v1/clients", "Authorization", "Bearer "+testAdminToken)
	stored, _ := f.store.GetClient(ctx, "billing")
	if status != 200 || strings.Contains(body, cc.Secret) || strings.Contains(body, stored.SecretHash) {
		t.Fatalf("GET /v1/clients: got %d %s, want neither the secret nor its hash", status, body)
	}
	// private_key_jwt with a JWKS, and a trusted proxy.
	key, _ := jose.GenerateKey(jose.ES256)
	jwks, _ := json.Marshal(jose.NewKeySet(key.Public()))
	pk, err := a.CreateClient(ctx, adminapi.NewClient{ID: "signer", AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks,
		Grants: []string{oauth.GrantClientCredentials}})
	if err != nil || pk.Secret != "" || len(pk.Client.JWKS) == 0 {
		t.Fatalf("create private_key_jwt client: got %+v, %v, want no secret and the JWKS", pk, err)
	}
	priv, _ := key.MarshalPrivate()
	if _, err := a.CreateClient(ctx, adminapi.NewClient{ID: "leaky", AuthMethod: store.AuthPrivateKeyJWT,
		JWKS: json.RawMessage(`{"keys":[` + string(priv) + `]}`), Grants: []string{oauth.GrantClientCredentials}}); !errors.Is(err, adminapi.ErrInvalid) {
		t.Fatalf("create with a private JWK: got %v, want ErrInvalid", err)
	}
	gw, err := a.CreateClient(ctx, adminapi.NewClient{ID: "gw", TrustedProxy: true, Grants: []string{oauth.GrantPassword}})
	if err != nil || !gw.Client.TrustedProxy {
		t.Fatalf("create trusted proxy: got %+v, %v", gw, err)
	}
	// An RP that logs its users out at the end-session endpoint.
	bye := []string{"https://rp.example/signed-out"}
	rp, err := a.CreateClient(ctx, adminapi.NewClient{ID: "rp", Grants: []string{oauth.GrantAuthorizationCode},
		RedirectURIs: []string{"https://rp.example/cb"}, PostLogoutRedirectURIs: bye})
	if err != nil || !slices.Equal(rp.Client.PostLogoutRedirectURIs, bye) {
		t.Fatalf("create with post-logout redirect URIs: got %+v, %v, want %q", rp, err, bye)
	}
	if _, err := a.CreateClient(ctx, adminapi.NewClient{ID: "rp2", Grants: []string{oauth.GrantAuthorizationCode},
		RedirectURIs: []string{"https://rp.example/cb"}, PostLogoutRedirectURIs: []string{"http://rp.example/bye"}}); !errors.Is(err, adminapi.ErrInvalid) {
		t.Fatalf("create with an http post-logout redirect URI: got %v, want ErrInvalid", err)
	}
	list, err := a.ListClients(ctx)
	if err != nil || len(list) != 4 {
		t.Fatalf("list: got %+v, %v, want 4 clients", list, err)
	}
	if c, err := a.SetClientDisabled(ctx, "billing", true); err != nil || !c.Disabled {
		t.Fatalf("disable: got %+v, %v", c, err)
	}
	r := f.token(url.Values{"grant_type": {oauth.GrantClientCredentials}}, "billing", cc.Secret)
	if r.str("error") != oauth.ErrInvalidClient {
		t.Fatalf("disabled client: got %d %v, want invalid_client", r.status, r.body)
	}
	if _, err := a.SetClientDisabled(ctx, "nobody", true); !errors.Is(err, adminapi.ErrNotFound) {
		t.Fatalf("disable unknown: got %v, want ErrNotFound", err)
	}
}

func TestAdminAPISessions(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	a, ctx := f.admin(), t.Context()
	secret := f.addClientWithRefresh("cli")
	user := f.addUser("alice", "alice-password")
	var refresh []string
	for range 3 {
		r := f.passwordGrant("cli", secret, "alice", "alice-password")
		if r.status != 200 {
			t.Fatalf("login: got %d %v", r.status, r.body)
		}
		refresh = append(refresh, r.str("refresh_token"))
	}
	sessions, err := a.ListSessions(ctx, "alice")
	if err != nil || len(sessions) != 3 || sessions[0].ClientID != "cli" || sessions[0].Revoked {
		t.Fatalf("list sessions: got %+v, %v, want 3 active sessions", sessions, err)
	}
	if err := a.RevokeSession(ctx, "alice", "no-such-session"); !errors.Is(err, adminapi.ErrNotFound) {
		t.Fatalf("revoke unknown session: got %v, want ErrNotFound", err)
	}
	// Revoke the session of the first login only.
	rt, _ := f.store.GetRefreshToken(ctx, f.srv.refreshHasher.Hash(refresh[0]))
	if err := a.RevokeSession(ctx, "alice", rt.FamilyID); err != nil {
		t.Fatalf("revoke one: %v", err)
	}
	refreshGrant := func(rt string) tokenResponse {
		return f.token(url.Values{"grant_type": {oauth.GrantRefreshToken}, "refresh_token": {rt}}, "cli", secret)
	}
	if r := refreshGrant(refresh[0]); r.str("error") != oauth.ErrInvalidGrant {
		t.Fatalf("refresh of the revoked session: got %d %v, want invalid_grant", r.status, r.body)
	}
	if r := refreshGrant(refresh[1]); r.status != 200 {
		t.Fatalf("refresh of another session: got %d %v, want 200", r.status, r.body)
	}
	revoked, err := a.RevokeSessions(ctx, "alice")
	if err != nil || len(revoked) != 2 {
		t.Fatalf("revoke all: got %v, %v, want the 2 remaining sessions", revoked, err)
	}
	if r := refreshGrant(refresh[2]); r.str("error") != oauth.ErrInvalidGrant {
		t.Fatalf("refresh after revoke all: got %d %v, want invalid_grant", r.status, r.body)
	}
	// Each revocation is an event, and revoking all sessions is one more,
	// naming the user alone: receivers end all the user's tokens.
	events, err := f.store.ListEvents(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var sessionEvents, userEvents int
	for _, e := range events {
		switch {
		case e.Type != caepSessionRevoked || e.Subject != user.ID:
		case e.SessionID != "":
			sessionEvents++
		default:
			userEvents++
		}
	}
	if sessionEvents != 3 || userEvents != 1 {
		t.Fatalf("session-revoked events: got %d of a session and %d of the user, want 3 and 1 (%+v)", sessionEvents, userEvents, events)
	}
}

func TestAdminDisableAndPasswordRevokeSessions(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	a, ctx := f.admin(), t.Context()
	secret := f.addClientWithRefresh("cli")
	f.addUser("bob", "bob-password")
	login := func() string {
		r := f.passwordGrant("cli", secret, "bob", "bob-password")
		if r.status != 200 {
			t.Fatalf("login: got %d %v", r.status, r.body)
		}
		return r.str("refresh_token")
	}
	login()
	if err := a.SetPassword(ctx, "bob", "bob-password"); err != nil {
		t.Fatal(err)
	}
	login()
	if _, err := a.SetUserDisabled(ctx, "bob", true); err != nil {
		t.Fatal(err)
	}
	sessions, _ := a.ListSessions(ctx, "bob")
	for _, s := range sessions {
		if !s.Revoked {
			t.Errorf("session %s active after password change and disable", s.ID)
		}
	}
	events, _ := f.store.ListEvents(ctx, 0, 100)
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	for _, want := range []string{caepCredentialChange, riscAccountDisabled, caepSessionRevoked} {
		if !slices.Contains(types, want) {
			t.Errorf("events: got %v, want %s among them", types, want)
		}
	}
}

func TestAdminAPIKeys(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	a, ctx := f.admin(), t.Context()
	keys, err := a.ListKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].State != adminapi.KeyActive || keys[0].Algorithm != jose.ES256 {
		t.Fatalf("list: got %+v, %v, want one active ES256 key", keys, err)
	}
	k, err := a.RotateKey(ctx, adminapi.RotateKey{Algorithm: jose.RS256})
	if err != nil || k.State != adminapi.KeyPending {
		t.Fatalf("rotate: got %+v, %v", k, err)
	}
	keys, _ = a.ListKeys(ctx)
	if len(keys) != 2 || keys[0].State != adminapi.KeyActive || keys[1].State != adminapi.KeyPending || keys[0].RetiredAt == nil {
		t.Fatalf("list after rotate: got %+v, want the active key (retiring) and the pending one", keys)
	}
}

func (f *fixture) addClientWithRefresh(id string) string {
	f.t.Helper()
	return f.addClient(clientSpec(id, oauth.GrantPassword, oauth.GrantRefreshToken))
}
