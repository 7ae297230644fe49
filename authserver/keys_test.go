package authserver

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// jwks fetches the fixture's JWKS.
func (f *fixture) jwks() *jose.KeySet {
	f.t.Helper()
	status, body := get(f.t, f.public, "/oauth2/jwks")
	if status != 200 {
		f.t.Fatalf("GET jwks: got %d", status)
	}
	set, err := jose.ParseKeySet([]byte(body))
	if err != nil {
		f.t.Fatalf("parse jwks: %v", err)
	}
	return set
}

func kids(set *jose.KeySet) []string {
	var ids []string
	for _, k := range set.Lookup("") {
		ids = append(ids, k.ID())
	}
	slices.Sort(ids)
	return ids
}

// clientToken gets an access token for the client credentials.
func (f *fixture) clientToken(id, secret string) string {
	f.t.Helper()
	r := f.token(url.Values{"grant_type": {oauth.GrantClientCredentials}}, id, secret)
	if r.status != 200 {
		f.t.Fatalf("client_credentials: got %d %v", r.status, r.body)
	}
	return r.str("access_token")
}

// verifyWithJWKS verifies an access token against the JWKS the server
// publishes now, at the fixture's clock, and returns the error.
func (f *fixture) verifyWithJWKS(raw string) error {
	f.t.Helper()
	_, err := jose.Verify(context.Background(), raw, f.jwks(), jose.Expect{Issuer: f.srv.Issuer(),
		Audience: []string{"api"}, Types: []string{jose.TypeAccessToken}, Now: f.clock.Now()})
	return err
}

// kidOf returns the kid of the key that verifies raw among the JWKS keys.
func (f *fixture) kidOf(raw string) string {
	f.t.Helper()
	for _, k := range f.jwks().Lookup("") {
		if _, err := jose.Verify(context.Background(), raw, jose.NewKeySet(k), jose.Expect{Issuer: f.srv.Issuer(),
			Audience: []string{"api"}, Types: []string{jose.TypeAccessToken}, Now: f.clock.Now()}); err == nil {
			return k.ID()
		}
	}
	f.t.Fatalf("no published key verifies the token")
	return ""
}

func TestKeyRotation(t *testing.T) {
	for _, alg := range RotatableAlgorithms {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			secret := f.addClient(accounts.ClientSpec{ID: "svc", Grants: []string{oauth.GrantClientCredentials}})
			first := kids(f.jwks())
			if len(first) != 1 {
				t.Fatalf("initial JWKS: got %v, want one key", first)
			}
			oldKid := first[0]

			k, err := f.admin().RotateKey(t.Context(), adminapi.RotateKey{Algorithm: alg})
			if err != nil {
				t.Fatalf("rotate: %v", err)
			}
			if k.State != adminapi.KeyPending || k.Algorithm != alg || !k.ActiveAt.Equal(f.clock.Now().Add(defaultKeyPublishDelay)) {
				t.Fatalf("rotated key: got %+v, want a pending %s key active in %v", k, alg, defaultKeyPublishDelay)
			}
			if got := kids(f.jwks()); !slices.Contains(got, k.ID) || !slices.Contains(got, oldKid) {
				t.Fatalf("JWKS after rotate: got %v, want the old and the new key", got)
			}
			// Published, not yet signing.
			f.clock.Advance(defaultKeyPublishDelay - time.Second)
			lastOld := f.clientToken("svc", secret)
			if got := f.kidOf(lastOld); got != oldKid {
				t.Fatalf("token during the publish delay signed by %q, want the old key %q", got, oldKid)
			}
			// Signing after the delay.
			f.clock.Advance(time.Second)
			if got := f.kidOf(f.clientToken("svc", secret)); got != k.ID {
				t.Fatalf("token after the publish delay signed by %q, want the new key %q", got, k.ID)
			}
			// The old key's last token verifies until it expires...
			f.clock.Advance(5*time.Minute - 2*time.Second)
			if err := f.verifyWithJWKS(lastOld); err != nil {
				t.Fatalf("old key's token before its expiry: %v", err)
			}
			keys, err := f.admin().ListKeys(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var old adminapi.Key
			for _, kk := range keys {
				if kk.ID == oldKid {
					old = kk
				}
			}
			if old.State != adminapi.KeyRetired || old.RetiredAt == nil || !old.RetiredAt.Equal(k.ActiveAt) ||
				old.ExpiresAt == nil || old.ExpiresAt.Before(k.ActiveAt.Add(5*time.Minute)) {
				t.Fatalf("old key: got %+v, want retired at %v and expiring after its last token", old, k.ActiveAt)
			}
			// ...and the key leaves the JWKS at its ExpiresAt.
			f.clock.Advance(old.ExpiresAt.Sub(f.clock.Now()) - time.Second)
			if got := kids(f.jwks()); !slices.Contains(got, oldKid) {
				t.Fatalf("JWKS just before the old key expires: got %v, want it still there", got)
			}
			f.clock.Advance(time.Second)
			if got := kids(f.jwks()); !slices.Equal(got, []string{k.ID}) {
				t.Fatalf("JWKS after the old key expired: got %v, want only %q", got, k.ID)
			}
		})
	}
}

// A rotation made elsewhere (the CLI on the store, or another replica)
// reaches a running server through its periodic reload.
func TestKeyRotationByAnotherProcess(t *testing.T) {
	f := newFixture(t, fixtureOptions{config: func(c *Config) { c.KeyReloadInterval = 10 * time.Millisecond }})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	cli, err := NewAdmin(AdminConfig{Store: f.store, Keyring: f.keyring, Now: f.clock.Now, Logger: f.srv.cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	k, err := cli.RotateKey(t.Context(), adminapi.RotateKey{Algorithm: jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(kids(f.jwks()), k.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("the server never published the key rotated by another process")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if algs := f.srv.keys.algorithms(); !slices.Contains(algs, jose.EdDSA) {
		t.Errorf("discovery algorithms: got %v, want EdDSA included", algs)
	}
}

func TestRotateRefusesUnknownAlgorithm(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, alg := range []string{"HS256", "none", "ES384", "bogus"} {
		if _, err := f.admin().RotateKey(t.Context(), adminapi.RotateKey{Algorithm: alg}); err == nil {
			t.Errorf("rotate to %q: got no error", alg)
		}
	}
	if got := kids(f.jwks()); len(got) != 1 {
		t.Fatalf("JWKS after refused rotations: got %v, want one key", got)
	}
}

// A replica that missed the reload keeps signing with the retired key only
// until it reloads, and never with a key before its ActiveAt.
func TestSignerFollowsTheClock(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	old := f.srv.keys.signer().ID()
	cli, _ := NewAdmin(AdminConfig{Store: f.store, Keyring: f.keyring, Now: f.clock.Now, KeyPublishDelay: time.Minute, Logger: f.srv.cfg.Logger})
	k, err := cli.RotateKey(t.Context(), adminapi.RotateKey{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.keys.reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := f.srv.keys.signer().ID(); got != old {
		t.Fatalf("signer before ActiveAt: got %q, want %q", got, old)
	}
	f.clock.Advance(time.Minute)
	if got := f.srv.keys.signer().ID(); got != k.ID {
		t.Fatalf("signer at ActiveAt, without a reload: got %q, want %q", got, k.ID)
	}
}
