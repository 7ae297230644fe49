package config

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

func TestSeedClientTokenSettings(t *testing.T) {
	seed, err := ParseSeed([]byte(`clients:
  - id: orders-svc
    secret: "orders-secret-0123456789"
    grants: [client_credentials, urn:ietf:params:oauth:grant-type:token-exchange]
    access_token_format: opaque
    access_token_ttl: 2m
    refresh_token_ttl: 1h
    refresh_absolute_ttl: 8h
    exchange_audiences: [consumers]
  - id: plain
    secret: "plain-secret-0123456789"
    grants: [client_credentials]
`))
	if err != nil {
		t.Fatalf("ParseSeed: got error %v, want nil", err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := &accounts.Manager{Store: st, Secrets: keyring.Generate().Hasher(keyring.PurposeClientSecret),
		Params: password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}}
	if err := seed.Apply(t.Context(), m); err != nil {
		t.Fatalf("Apply: got error %v, want nil", err)
	}
	c, err := st.GetClient(t.Context(), "orders-svc")
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessTokenFormat != store.FormatOpaque || c.AccessTokenTTL != 2*time.Minute || c.RefreshTokenTTL != time.Hour ||
		c.RefreshAbsoluteTTL != 8*time.Hour || !slices.Equal(c.ExchangeAudiences, []string{"consumers"}) {
		t.Errorf("got %+v, want the seed's format, lifetimes and exchange audiences", c)
	}
	p, err := st.GetClient(t.Context(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	if p.AccessTokenFormat != store.FormatJWT || p.AccessTokenTTL != 0 || p.ExchangeAudiences != nil {
		t.Errorf("got %+v, want JWT and the server's lifetimes", p)
	}

	bad, err := ParseSeed([]byte("clients:\n  - id: x\n    secret: \"x-secret-0123456789\"\n    grants: [client_credentials]\n    access_token_format: paseto\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Apply(t.Context(), m); err == nil {
		t.Errorf("Apply with format paseto: got no error, want a rule violation")
	}
}
