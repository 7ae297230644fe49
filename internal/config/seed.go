package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Seed is the seed file: users and clients created (or brought up to date)
// at start. See docs/seed.md.
type Seed struct {
	Users   []SeedUser   `yaml:"users"`
	Clients []SeedClient `yaml:"clients"`

	// dir is the seed file's folder, against which relative jwks_file
	// paths are resolved; "" for the working directory.
	dir string
}

// SeedUser is a user of the seed file.
type SeedUser struct {
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	Roles    []string `yaml:"roles"`
	Disabled bool     `yaml:"disabled"`
}

// SeedClient is a client of the seed file.
type SeedClient struct {
	ID           string   `yaml:"id"`
	Secret       string   `yaml:"secret"`
	Public       bool     `yaml:"public"`
	AuthMethod   string   `yaml:"auth_method"` // token_endpoint_auth_method; "none" makes the client public
	Grants       []string `yaml:"grants"`
	Scopes       []string `yaml:"scopes"`
	RedirectURIs []string `yaml:"redirect_uris"`
	// PostLogoutRedirectURIs are where the end-session endpoint may send
	// the browser after logout; compared exactly.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	Audience               []string `yaml:"audience"`
	// AccessTokenFormat: jwt (default) or opaque.
	AccessTokenFormat string `yaml:"access_token_format"`
	// Lifetimes; zero or absent means the server's default.
	AccessTokenTTL     time.Duration `yaml:"access_token_ttl"`
	RefreshTokenTTL    time.Duration `yaml:"refresh_token_ttl"`
	RefreshAbsoluteTTL time.Duration `yaml:"refresh_absolute_ttl"`
	// ExchangeAudiences the client may ask for in a token exchange.
	ExchangeAudiences []string `yaml:"exchange_audiences"`
	// JWKS holds a private_key_jwt client's public keys: a JWKS document
	// written as YAML, or a string of JSON.
	JWKS any `yaml:"jwks"`
	// JWKSFile names a JSON JWKS file instead, relative to the seed file.
	JWKSFile string `yaml:"jwks_file"`
	// TrustedProxy lets the client name the end user's address for login
	// throttling (the gateway's own client is one).
	TrustedProxy bool `yaml:"trusted_proxy"`
	// CertificateBound binds its access tokens to its TLS client
	// certificate (RFC 8705): it must request them over mutual TLS.
	CertificateBound bool `yaml:"certificate_bound"`
}

// LoadSeed reads a seed file.
func LoadSeed(path string) (*Seed, error) {
	var s Seed
	if err := load(path, &s); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	s.dir = filepath.Dir(path)
	return &s, nil
}

// ParseSeed parses seed YAML.
func ParseSeed(data []byte) (*Seed, error) {
	var s Seed
	if err := decodeStrict(data, &s); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	return &s, nil
}

// Apply makes the store match the seed: missing users and clients are
// created; existing ones get the seed's password, roles, secret and
// registration. Users and clients not in the seed are left alone.
func (s *Seed) Apply(ctx context.Context, m *accounts.Manager) error {
	for _, u := range s.Users {
		_, err := m.AddUser(ctx, u.Username, u.Password, u.Roles)
		if errors.Is(err, store.ErrAlreadyExists) {
			if err = m.SetPassword(ctx, u.Username, u.Password); err == nil {
				err = m.SetRoles(ctx, u.Username, u.Roles)
			}
		}
		if err == nil {
			err = m.SetDisabled(ctx, u.Username, u.Disabled)
		}
		if err != nil {
			return fmt.Errorf("seed user %q: %w", u.Username, err)
		}
	}
	for _, c := range s.Clients {
		public := c.Public || c.AuthMethod == store.AuthNone
		if !public && c.Secret == "" && c.AuthMethod != store.AuthPrivateKeyJWT && c.AuthMethod != store.AuthTLSClientAuth {
			return fmt.Errorf("seed client %q: a confidential client needs a secret", c.ID)
		}
		jwks, err := c.jwks(s.dir)
		if err != nil {
			return fmt.Errorf("seed client %q: %w", c.ID, err)
		}
		_, _, err = m.PutClient(ctx, accounts.ClientSpec{ID: c.ID, Secret: c.Secret, Public: public,
			AuthMethod: c.AuthMethod, Grants: c.Grants, Scopes: c.Scopes, RedirectURIs: c.RedirectURIs, Audience: c.Audience,
			PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, AccessTokenFormat: c.AccessTokenFormat, AccessTokenTTL: c.AccessTokenTTL, RefreshTokenTTL: c.RefreshTokenTTL,
			RefreshAbsoluteTTL: c.RefreshAbsoluteTTL, ExchangeAudiences: c.ExchangeAudiences,
			JWKS: jwks, TrustedProxy: c.TrustedProxy, CertificateBound: c.CertificateBound})
		if err != nil {
			return fmt.Errorf("seed client %q: %w", c.ID, err)
		}
	}
	return nil
}

// jwks returns the client's JWKS as JSON, from jwks or jwks_file (resolved
// against dir); nil when it has none.
func (c SeedClient) jwks(dir string) ([]byte, error) {
	switch {
	case c.JWKS != nil && c.JWKSFile != "":
		return nil, errors.New("jwks and jwks_file are exclusive")
	case c.JWKSFile != "":
		path := c.JWKSFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("jwks_file: %w", err)
		}
		return b, nil
	case c.JWKS == nil:
		return nil, nil
	}
	if s, ok := c.JWKS.(string); ok {
		return []byte(s), nil
	}
	b, err := json.Marshal(c.JWKS)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return b, nil
}
