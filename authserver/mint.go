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
	if slices.Contains(t.scopes, scopeOpenID) && !slices.Contains(aud, s.cfg.Issuer) {
		aud = append(slices.Clip(aud), s.cfg.Issuer) // the token is also for the userinfo endpoint
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

// issueForUser starts a session for u, who has just authenticated: an
// access token, the first refresh token of a new family when the client may
// refresh, and an ID token when the openid scope is granted.
func (s *Server) issueForUser(ctx context.Context, c store.Client, u store.User, scopes []string) (*oauth.TokenResponse, error) {
	return s.issueSession(ctx, c, u, scopes, login{family: keyring.RandomToken(16), authTime: s.cfg.Now().UTC()})
}

// login is one authentication of a user that tokens are issued for.
type login struct {
	family   string    // the refresh-token family, also the session ID (sid)
	authTime time.Time // when the user authenticated
	nonce    string    // the OpenID Connect nonce of the authorization request
}

// issueSession issues the tokens of a new session l.
func (s *Server) issueSession(ctx context.Context, c store.Client, u store.User, scopes []string, l login) (*oauth.TokenResponse, error) {
	now := s.cfg.Now().UTC()
	resp := &oauth.TokenResponse{TokenType: "Bearer", Scope: strings.Join(scopes, " ")}
	if slices.Contains(c.Grants, oauth.GrantRefreshToken) {
		rt := keyring.RandomToken(32)
		err := s.cfg.Store.CreateRefreshToken(ctx, store.RefreshToken{
			Hash: s.refreshHasher.Hash(rt), FamilyID: l.family, ClientID: c.ID, UserID: u.ID,
			Scopes: scopes, AuthTime: l.authTime, CreatedAt: now, ExpiresAt: s.refreshExpiry(now, l.authTime),
		})
		if err != nil {
			return nil, s.internal(ctx, "store refresh token", err)
		}
		resp.RefreshToken = rt
	}
	at, ttl, err := s.mintAccessToken(accessToken{client: c, subject: u.ID, user: &u, scopes: scopes, sessionID: l.family, authTime: l.authTime})
	if err != nil {
		return nil, s.internal(ctx, "mint access token", err)
	}
	resp.AccessToken, resp.ExpiresIn = at, ttl
	if err := s.addIDToken(ctx, resp, c, u, scopes, l); err != nil {
		return nil, err
	}
	s.audit(ctx, "token issued", "client_id", c.ID, "sub", u.ID, "sid", l.family)
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
