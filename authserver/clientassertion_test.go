package authserver

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// assertionClient is a client registered for private_key_jwt with its key.
type assertionClient struct {
	id  string
	key *jose.PrivateKey
}

func newAssertionClient(t *testing.T, f *fixture, id, alg string) assertionClient {
	t.Helper()
	key, err := jose.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.NewKeySet(key.Public()))
	if err != nil {
		t.Fatal(err)
	}
	f.addClient(accounts.ClientSpec{ID: id, AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks,
		Grants: []string{oauth.GrantClientCredentials}, Scopes: []string{"orders"}})
	return assertionClient{id: id, key: key}
}

// assertion signs claims for c, starting from valid ones that change edits.
func (c assertionClient) assertion(t *testing.T, f *fixture, change func(*jose.Claims)) string {
	t.Helper()
	now := f.clock.Now()
	claims := jose.Claims{Issuer: c.id, Subject: c.id, Audience: jose.Audience{f.srv.TokenURL()},
		IssuedAt: jose.NewNumericDate(now), Expiry: jose.NewNumericDate(now.Add(time.Minute)),
		ID: keyring.RandomToken(16)}
	if change != nil {
		change(&claims)
	}
	raw, err := jose.Sign(c.key, jose.TypeJWT, claims)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func assertionForm(clientID, assertion string) url.Values {
	form := url.Values{"grant_type": {oauth.GrantClientCredentials}, "client_assertion": {assertion},
		"client_assertion_type": {assertionTypeJWT}}
	if clientID != "" {
		form.Set("client_id", clientID)
	}
	return form
}

func TestPrivateKeyJWT(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := newAssertionClient(t, f, "billing", jose.ES256)
	other := newAssertionClient(t, f, "reports", jose.EdDSA)
	secretOfSecretClient := f.addClient(accounts.ClientSpec{ID: "cli", Grants: []string{oauth.GrantClientCredentials}})
	replayed := c.assertion(t, f, nil)
	if r := f.token(assertionForm("", replayed), "", ""); r.status != 200 {
		t.Fatalf("first use of an assertion: got %d %v, want 200", r.status, r.body)
	}
	tests := []struct {
		name     string
		form     func() url.Values
		basic    [2]string
		wantCode string // "" for success
	}{
		{name: "valid, client_id in the form", form: func() url.Values { return assertionForm(c.id, c.assertion(t, f, nil)) }},
		{name: "valid, client_id from iss", form: func() url.Values { return assertionForm("", c.assertion(t, f, nil)) }},
		{name: "valid, aud is the issuer", form: func() url.Values {
			return assertionForm("", c.assertion(t, f, func(cl *jose.Claims) { cl.Audience = jose.Audience{f.srv.Issuer()} }))
		}},
		{name: "valid EdDSA client", form: func() url.Values { return assertionForm("", other.assertion(t, f, nil)) }},
		{name: "replayed jti", form: func() url.Values { return assertionForm(c.id, replayed) }, wantCode: oauth.ErrInvalidClient},
		{name: "signed with another client's key", form: func() url.Values {
			return assertionForm(c.id, assertionClient{id: c.id, key: other.key}.assertion(t, f, nil))
		}, wantCode: oauth.ErrInvalidClient},
		{name: "wrong aud", form: func() url.Values {
			return assertionForm(c.id, c.assertion(t, f, func(cl *jose.Claims) { cl.Audience = jose.Audience{"https://elsewhere.example"} }))
		}, wantCode: oauth.ErrInvalidClient},
		{name: "expired", form: func() url.Values {
			return assertionForm(c.id, c.assertion(t, f, func(cl *jose.Claims) {
				cl.Expiry = jose.NewNumericDate(f.clock.Now().Add(-2 * time.Minute))
			}))
		}, wantCode: oauth.ErrInvalidClient},
		{name: "exp too far ahead", form: func() url.Values {
			return assertionForm(c.id, c.assertion(t, f, func(cl *jose.Claims) {
				cl.Expiry = jose.NewNumericDate(f.clock.Now().Add(time.Hour))
			}))
		}, wantCode: oauth.ErrInvalidClient},
		{name: "no jti", form: func() url.Values {
			return assertionForm(c.id, c.assertion(t, f, func(cl *jose.Claims) { cl.ID = "" }))
		}, wantCode: oauth.ErrInvalidClient},
		{name: "sub is not the client", form: func() url.Values {
			return assertionForm(c.id, c.assertion(t, f, func(cl *jose.Claims) { cl.Subject = "someone" }))
		}, wantCode: oauth.ErrInvalidClient},
		{name: "client_id differs from iss", form: func() url.Values {
			return assertionForm(other.id, c.assertion(t, f, nil))
		}, wantCode: oauth.ErrInvalidClient},
		{name: "access-token typ", form: func() url.Values {
			raw, err := jose.Sign(c.key, jose.TypeAccessToken, jose.Claims{Issuer: c.id, Subject: c.id,
				Audience: jose.Audience{f.srv.TokenURL()}, Expiry: jose.NewNumericDate(f.clock.Now().Add(time.Minute)), ID: "x1"})
			if err != nil {
				t.Fatal(err)
			}
			return assertionForm(c.id, raw)
		}, wantCode: oauth.ErrInvalidClient},
		{name: "unknown client", form: func() url.Values {
			return assertionForm("", assertionClient{id: "ghost", key: c.key}.assertion(t, f, nil))
		}, wantCode: oauth.ErrInvalidClient},
		{name: "garbage assertion", form: func() url.Values { return assertionForm("", "not.a.jwt") }, wantCode: oauth.ErrInvalidClient},
		{name: "wrong assertion type", form: func() url.Values {
			form := assertionForm(c.id, c.assertion(t, f, nil))
			form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			return form
		}, wantCode: oauth.ErrInvalidClient},
		{name: "assertion without its type", form: func() url.Values {
			form := assertionForm(c.id, c.assertion(t, f, nil))
			form.Del("client_assertion_type")
			return form
		}, wantCode: oauth.ErrInvalidRequest},
		{name: "private_key_jwt client using a secret", form: func() url.Values {
			return url.Values{"grant_type": {oauth.GrantClientCredentials}, "client_id": {c.id}, "client_secret": {strings.Repeat("s", 43)}}
		}, wantCode: oauth.ErrInvalidClient},
		{name: "secret client using an assertion", form: func() url.Values {
			return assertionForm("", assertionClient{id: "cli", key: c.key}.assertion(t, f, nil))
		}, wantCode: oauth.ErrInvalidClient},
		{name: "assertion and Basic together", form: func() url.Values {
			return assertionForm(c.id, c.assertion(t, f, nil))
		}, basic: [2]string{"cli", secretOfSecretClient}, wantCode: oauth.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.token(tt.form(), tt.basic[0], tt.basic[1])
			if tt.wantCode == "" {
				if r.status != 200 || r.str("access_token") == "" {
					t.Fatalf("got %d %v, want 200 with an access token", r.status, r.body)
				}
				return
			}
			if r.str("error") != tt.wantCode {
				t.Fatalf("got %d %v, want error %q", r.status, r.body, tt.wantCode)
			}
			if tt.wantCode == oauth.ErrInvalidClient && r.status != 401 {
				t.Fatalf("got status %d, want 401", r.status)
			}
		})
	}
}

// A client that once had a secret and was switched to private_key_jwt keeps
// the old secret's hash in the store; the secret must not work any more.
func TestPrivateKeyJWTClientRefusesLeftoverSecret(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	secret := f.addClient(accounts.ClientSpec{ID: "svc", Grants: []string{oauth.GrantClientCredentials}})
	if r := f.token(url.Values{"grant_type": {oauth.GrantClientCredentials}}, "svc", secret); r.status != 200 {
		t.Fatalf("secret before the switch: got %d %v, want 200", r.status, r.body)
	}
	key, _ := jose.GenerateKey(jose.ES256)
	jwks, _ := json.Marshal(jose.NewKeySet(key.Public()))
	_, err := f.store.UpdateClient(t.Context(), "svc", func(c *store.Client) error {
		c.AuthMethod, c.JWKS = store.AuthPrivateKeyJWT, jwks // SecretHash left behind
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Changed on the store directly, as by the CLI: the server sees it once
	// its cached record is older than the bound.
	f.clock.Advance(clientCacheTTL)
	if r := f.token(url.Values{"grant_type": {oauth.GrantClientCredentials}}, "svc", secret); r.str("error") != oauth.ErrInvalidClient {
		t.Fatalf("secret after the switch: got %d %v, want invalid_client", r.status, r.body)
	}
	raw := assertionClient{id: "svc", key: key}.assertion(t, f, nil)
	if r := f.token(assertionForm("svc", raw), "", ""); r.status != 200 {
		t.Fatalf("assertion after the switch: got %d %v, want 200", r.status, r.body)
	}
}

// The replay cache is in the store: a second server on the same store
// refuses an assertion the first one accepted.
func TestPrivateKeyJWTReplayAcrossReplicas(t *testing.T) {
	for _, kind := range storeKinds() {
		t.Run(kind, func(t *testing.T) {
			st, kr, clock := openStore(t, kind), keyring.Generate(), newTestClock()
			a := newFixture(t, fixtureOptions{store: st, keyring: kr, clock: clock})
			b := newFixture(t, fixtureOptions{store: st, keyring: kr, clock: clock})
			c := newAssertionClient(t, a, "billing", jose.ES256)
			// Each server has its own issuer URL; aud names both.
			raw := c.assertion(t, a, func(cl *jose.Claims) { cl.Audience = jose.Audience{a.srv.Issuer(), b.srv.Issuer()} })
			if r := a.token(assertionForm("", raw), "", ""); r.status != 200 {
				t.Fatalf("replica a: got %d %v, want 200", r.status, r.body)
			}
			if r := b.token(assertionForm("", raw), "", ""); r.str("error") != oauth.ErrInvalidClient {
				t.Fatalf("replica b, same assertion: got %d %v, want invalid_client", r.status, r.body)
			}
		})
	}
}

// A secret set on the store directly (the CLI with --store, another
// replica) works at once, though the server still has the client's record
// with the old secret in its cache: a failed comparison reads the record
// again before refusing.
func TestNewSecretWorksAtOnce(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	spec := accounts.ClientSpec{ID: "svc", Grants: []string{oauth.GrantClientCredentials}}
	old := f.addClient(spec)
	cc := url.Values{"grant_type": {oauth.GrantClientCredentials}}
	if r := f.token(cc, "svc", old); r.status != 200 {
		t.Fatalf("first secret: got %d %v, want 200", r.status, r.body)
	}
	_, secret, err := f.accounts.PutClient(t.Context(), spec) // a new secret
	if err != nil {
		t.Fatal(err)
	}
	if r := f.token(cc, "svc", secret); r.status != 200 {
		t.Fatalf("new secret within the cache's second: got %d %v, want 200", r.status, r.body)
	}
	if r := f.token(cc, "svc", old); r.str("error") != oauth.ErrInvalidClient {
		t.Errorf("old secret after the new one was used: got %d %v, want invalid_client", r.status, r.body)
	}
	if r := f.token(cc, "svc", "not-the-secret"); r.str("error") != oauth.ErrInvalidClient {
		t.Errorf("wrong secret: got %d %v, want invalid_client", r.status, r.body)
	}
}
