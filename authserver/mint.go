package authserver

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// accessToken is what an access token is minted from.
type accessToken struct {
	client    store.Client
	subject   string
	user      *store.User // nil when the client acts for itself
	scopes    []string
	sessionID string
	authTime  time.Time
}

// mintAccessToken signs an RFC 9068 access token and returns it with its
// lifetime in seconds.
func (s *Server) mintAccessToken(t accessToken) (string, int64, error) {
	now := s.cfg.Now()
	aud := t.client.Audience
	if len(aud) == 0 {
		aud = s.cfg.Audience
	}
	c := jose.Claims{
		Issuer:    s.cfg.Issuer,
		Subject:   t.subject,
		Audience:  jose.Audience(aud),
		IssuedAt:  jose.NewNumericDate(now),
		Expiry:    jose.NewNumericDate(now.Add(s.cfg.AccessTokenTTL)),
		ID:        keyring.RandomToken(16),
		ClientID:  t.client.ID,
		Scope:     strings.Join(t.scopes, " "),
		SessionID: t.sessionID,
		AuthTime:  jose.NewNumericDate(t.authTime),
	}
	if t.user != nil {
		c.Username = t.user.Username
		c.Roles = t.user.Roles
	}
	raw, err := jose.Sign(s.keys.signer(), jose.TypeAccessToken, c)
	if err != nil {
		return "", 0, err
	}
	return raw, int64(s.cfg.AccessTokenTTL / time.Second), nil
}

// issueForUser starts a session for u: an access token and, when the client
// may refresh, the first refresh token of a new family.
func (s *Server) issueForUser(ctx context.Context, c store.Client, u store.User, scopes []string) (*oauth.TokenResponse, error) {
	now := s.cfg.Now().UTC()
	family := keyring.RandomToken(16)
	resp := &oauth.TokenResponse{TokenType: "Bearer", Scope: strings.Join(scopes, " ")}
	if slices.Contains(c.Grants, oauth.GrantRefreshToken) {
		rt := keyring.RandomToken(32)
		err := s.cfg.Store.CreateRefreshToken(ctx, store.RefreshToken{
			Hash: s.refreshHasher.Hash(rt), FamilyID: family, ClientID: c.ID, UserID: u.ID,
			Scopes: scopes, AuthTime: now, CreatedAt: now, ExpiresAt: s.refreshExpiry(now, now),
		})
		if err != nil {
			return nil, s.internal(ctx, "store refresh token", err)
		}
		resp.RefreshToken = rt
	}
	at, ttl, err := s.mintAccessToken(accessToken{client: c, subject: u.ID, user: &u, scopes: scopes, sessionID: family, authTime: now})
	if err != nil {
		return nil, s.internal(ctx, "mint access token", err)
	}
	resp.AccessToken, resp.ExpiresIn = at, ttl
	s.audit(ctx, "token issued", "client_id", c.ID, "sub", u.ID, "sid", family)
	return resp, nil
}

// successor derives the token that replaces a refresh token. Deriving it
// (instead of drawing it at random) lets a retry within the grace window
// receive the same successor without the server storing any token in clear.
func (s *Server) successor(presented string) string {
	return base64.RawURLEncoding.EncodeToString(s.successorHasher.Sum(presented))
}

// refreshExpiry is the idle lifetime from now, capped by the family's
// absolute lifetime from authTime.
func (s *Server) refreshExpiry(now, authTime time.Time) time.Time {
	idle := now.Add(s.cfg.RefreshTokenTTL)
	if abs := authTime.Add(s.cfg.RefreshAbsoluteTTL); abs.Before(idle) {
		return abs
	}
	return idle
}
