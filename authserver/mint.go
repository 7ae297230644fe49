package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// opaqueTokenBytes is the entropy of an opaque access token (256 bits).
const opaqueTokenBytes = 32

// accessToken is what an access token is minted from.
type accessToken struct {
	client    store.Client
	subject   string
	user      *store.User // nil when the client acts for itself
	scopes    []string
	sessionID string
	authTime  time.Time
	// audience, when set, replaces the client's audience (token exchange).
	audience []string
	// actor, when set, is the "act" claim (token exchange).
	actor *jose.Actor
	// notAfter, when set, caps the expiry (a token exchange never outlives
	// its subject token).
	notAfter time.Time
	// notBefore, when set, is the least "iat" (a token exchange is never
	// dated before its subject token).
	notBefore time.Time
}

// issuedAt is the "iat" of a token minted at now: now, in whole seconds,
// and never before notBefore (a token exchange is never dated before its
// subject token, so it is ended no earlier). Tokens are never dated ahead:
// a token minted for a user in the very second of a change to the user
// would count as ended, at the server as at SSF receivers (which compare
// whole seconds), so settle waits that second out before such a token is
// minted.
func (t accessToken) issuedAt(now time.Time) time.Time {
	iat := now.Truncate(time.Second)
	if t.notBefore.After(iat) {
		iat = t.notBefore
	}
	return iat
}

// errAccountChanged refuses a grant whose user changed again while settle
// waited: what the grant checked may no longer hold.
var errAccountChanged = oauth.Errorf(oauth.ErrInvalidGrant, "the account changed during the request; try again")

// settle returns u, read again, once the current second is later than the
// second of u's last change (store.User.TokensNotBefore), waiting for the
// next second if need be (at most one second, once). Every token dated in
// that second counts as ended, so a token minted in it for u — a login
// right after a password change, a refresh right after a roles change —
// would be refused everywhere; waiting instead of dating it ahead keeps a
// later change in the same second from missing it. If u changed again
// meanwhile (another change, disabled, deleted) the grant is refused with
// errAccountChanged. Call it before anything of the grant is written.
func (s *Server) settle(ctx context.Context, u store.User) (store.User, error) {
	if u.TokensNotBefore == nil {
		return u, nil
	}
	now := s.cfg.Now()
	second := now.Truncate(time.Second)
	if !second.Equal(u.TokensNotBefore.Truncate(time.Second)) {
		return u, nil
	}
	if err := s.sleep(ctx, second.Add(time.Second).Sub(now)); err != nil {
		return store.User{}, err
	}
	fresh, err := s.cfg.Store.GetUserByID(ctx, u.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, errAccountChanged
	case err != nil:
		return store.User{}, fmt.Errorf("get user: %w", err)
	case fresh.Disabled || fresh.TokensNotBefore == nil || !fresh.TokensNotBefore.Equal(*u.TokensNotBefore):
		return store.User{}, errAccountChanged
	}
	return fresh, nil
}

// sleepContext waits for d or until ctx is done.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mintAccessToken issues an access token in the client's format and returns
// it with its lifetime in seconds: an RFC 9068 JWT, or an opaque random
// string stored by its keyed hash with the claims the JWT would have carried.
func (s *Server) mintAccessToken(ctx context.Context, t accessToken) (string, int64, error) {
	now := s.cfg.Now()
	c := s.accessClaims(t, now)
	c.Cnf = confirmationFrom(ctx) // RFC 8705 §3.1: bound to the client's certificate
	ttl := int64(c.Expiry.Time().Sub(now.Truncate(time.Second)) / time.Second)
	if t.client.AccessTokenFormat == store.FormatOpaque {
		raw, err := s.storeOpaque(ctx, t, c, now)
		return raw, ttl, err
	}
	raw, err := jose.Sign(s.keys.signer(), jose.TypeAccessToken, c)
	if err != nil {
		return "", 0, err
	}
	return raw, ttl, nil
}

// accessClaims are the claims of an access token minted at now.
func (s *Server) accessClaims(t accessToken, now time.Time) *jose.Claims {
	aud := t.audience
	if len(aud) == 0 {
		aud = t.client.Audience
	}
	if len(aud) == 0 {
		aud = s.cfg.Audience
	}
	if t.audience == nil && slices.Contains(t.scopes, scopeOpenID) && !slices.Contains(aud, s.cfg.Issuer) {
		aud = append(slices.Clip(aud), s.cfg.Issuer) // the token is also for the userinfo endpoint
	}
	exp := now.Add(s.accessTTL(t.client))
	if !t.notAfter.IsZero() && t.notAfter.Before(exp) {
		exp = t.notAfter
	}
	c := &jose.Claims{
		Issuer:    s.cfg.Issuer,
		Subject:   t.subject,
		Audience:  jose.Audience(aud),
		IssuedAt:  jose.NewNumericDate(t.issuedAt(now)),
		Expiry:    jose.NewNumericDate(exp),
		ID:        keyring.RandomToken(16),
		ClientID:  t.client.ID,
		Scope:     strings.Join(t.scopes, " "),
		SessionID: t.sessionID,
		AuthTime:  jose.NewNumericDate(t.authTime),
		Act:       t.actor,
	}
	if t.user != nil {
		c.Username = t.user.Username
		c.Roles = t.user.Roles
	}
	return c
}

// storeOpaque stores an opaque token carrying c and returns it.
func (s *Server) storeOpaque(ctx context.Context, t accessToken, c *jose.Claims, now time.Time) (string, error) {
	claims, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("marshal claims: %w", err)
	}
	raw := keyring.RandomToken(opaqueTokenBytes)
	err = s.cfg.Store.CreateAccessToken(ctx, store.AccessToken{
		Hash: s.accessHasher.Hash(raw), ClientID: t.client.ID, Subject: t.subject, FamilyID: t.sessionID,
		Claims: claims, CreatedAt: now.UTC(), ExpiresAt: c.Expiry.Time().UTC(),
	})
	if err != nil {
		return "", fmt.Errorf("store opaque access token: %w", err)
	}
	return raw, nil
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
	u, err := s.settle(ctx, u)
	if err != nil {
		return nil, s.grantError(ctx, "settle", err)
	}
	now := s.cfg.Now().UTC()
	resp := &oauth.TokenResponse{TokenType: "Bearer", Scope: strings.Join(scopes, " ")}
	if slices.Contains(c.Grants, oauth.GrantRefreshToken) {
		rt := keyring.RandomToken(32)
		err := s.cfg.Store.CreateRefreshToken(ctx, store.RefreshToken{
			Hash: s.refreshHasher.Hash(rt), FamilyID: l.family, ClientID: c.ID, UserID: u.ID,
			Scopes: scopes, AuthTime: l.authTime, CreatedAt: now, ExpiresAt: s.refreshExpiry(c, now, l.authTime),
		})
		if err != nil {
			return nil, s.internal(ctx, "store refresh token", err)
		}
		resp.RefreshToken = rt
	}
	at, ttl, err := s.mintAccessToken(ctx, accessToken{client: c, subject: u.ID, user: &u, scopes: scopes, sessionID: l.family, authTime: l.authTime})
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

// accessTTL is the lifetime of c's access tokens.
func (s *Server) accessTTL(c store.Client) time.Duration {
	if c.AccessTokenTTL > 0 {
		return c.AccessTokenTTL
	}
	return s.cfg.AccessTokenTTL
}

// refreshExpiry is c's idle lifetime from now, capped by its absolute
// lifetime from authTime.
func (s *Server) refreshExpiry(c store.Client, now, authTime time.Time) time.Time {
	idle, abs := s.cfg.RefreshTokenTTL, s.cfg.RefreshAbsoluteTTL
	if c.RefreshTokenTTL > 0 {
		idle = c.RefreshTokenTTL
	}
	if c.RefreshAbsoluteTTL > 0 {
		abs = c.RefreshAbsoluteTTL
	}
	if end := authTime.Add(abs); end.Before(now.Add(idle)) {
		return end
	}
	return now.Add(idle)
}
