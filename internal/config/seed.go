package config

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Seed is the seed file: users and clients created (or brought up to date)
// at start. See docs/seed.md.
type Seed struct {
	Users   []SeedUser   `yaml:"users"`
	Clients []SeedClient `yaml:"clients"`
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
	Audience     []string `yaml:"audience"`
	// AccessTokenFormat: jwt (default) or opaque.
	AccessTokenFormat string `yaml:"access_token_format"`
	// Lifetimes; zero or absent means the server's default.
	AccessTokenTTL     time.Duration `yaml:"access_token_ttl"`
	RefreshTokenTTL    time.Duration `yaml:"refresh_token_ttl"`
	RefreshAbsoluteTTL time.Duration `yaml:"refresh_absolute_ttl"`
	// ExchangeAudiences the client may ask for in a token exchange.
	ExchangeAudiences []string `yaml:"exchange_audiences"`
}

// LoadSeed reads a seed file.
func LoadSeed(path string) (*Seed, error) {
	var s Seed
	if err := load(path, &s); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
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
		if !public && c.Secret == "" {
			return fmt.Errorf("seed client %q: a confidential client needs a secret", c.ID)
		}
		_, _, err := m.PutClient(ctx, accounts.ClientSpec{ID: c.ID, Secret: c.Secret, Public: public,
			AuthMethod: c.AuthMethod, Grants: c.Grants, Scopes: c.Scopes, RedirectURIs: c.RedirectURIs, Audience: c.Audience,
			AccessTokenFormat: c.AccessTokenFormat, AccessTokenTTL: c.AccessTokenTTL, RefreshTokenTTL: c.RefreshTokenTTL,
			RefreshAbsoluteTTL: c.RefreshAbsoluteTTL, ExchangeAudiences: c.ExchangeAudiences})
		if err != nil {
			return fmt.Errorf("seed client %q: %w", c.ID, err)
		}
	}
	return nil
}
