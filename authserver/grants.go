package authserver

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// badLogin is the one answer for every failed password grant, so a client
// cannot tell an unknown user from a wrong password or a disabled account.
var badLogin = oauth.Errorf(oauth.ErrInvalidGrant, "invalid username or password")

// passwordGrant is RFC 6749 §4.3.
func (s *Server) passwordGrant(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error) {
	username, pw := req.form.Get("username"), req.form.Get("password")
	if username == "" || !req.form.Has("password") {
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "username and password are required")
	}
	keys, err := loginKeysFor(username, req)
	if err != nil {
		return nil, err
	}
	u, err := s.authenticateUser(ctx, username, pw, req.client.ID, req.addr, keys)
	if err != nil {
		return nil, err
	}
	return s.issueForUser(ctx, req.client, u, grantedScopes(req.scopes, req.client.Scopes))
}

// authenticateUser checks a user's password for the password grant and the
// login page alike, throttled by keys; every failure is badLogin, or the
// throttle's own invalid_grant while a key is locked.
func (s *Server) authenticateUser(ctx context.Context, username, pw, clientID, addr string, keys loginKeys) (store.User, error) {
	if err := s.checkLoginAllowed(ctx, keys, clientID); err != nil {
		return store.User{}, err
	}
	u, err := s.cfg.Store.GetUser(ctx, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, s.internal(ctx, "get user", err)
	}
	ok, rehash, err := s.verifyPassword(ctx, pw, u.PasswordHash) // "" for an unknown user
	if err != nil && !errors.Is(err, password.ErrMalformed) {
		return store.User{}, s.internal(ctx, "verify password", err)
	}
	if !ok || u.Disabled {
		s.loginFailed(ctx, keys)
		s.audit(ctx, "login failed", "username", username, "client_id", clientID, "addr", addr, "end_user_addr", keys.addr)
		return store.User{}, badLogin
	}
	s.loginSucceeded(ctx, keys)
	if rehash {
		s.rehash(ctx, username, pw, u.PasswordHash)
	}
	s.audit(ctx, "login succeeded", "username", username, "sub", u.ID, "client_id", clientID)
	return u, nil
}

// rehash stores pw's hash under the current parameters unless the
// password was changed since oldHash was verified; failure is logged and
// does not fail the login.
func (s *Server) rehash(ctx context.Context, username, pw, oldHash string) {
	m := accounts.Manager{Store: s.cfg.Store, Params: s.cfg.PasswordParams, Now: s.cfg.Now}
	if err := m.Rehash(ctx, username, pw, oldHash); err != nil {
		s.cfg.Logger.WarnContext(ctx, "rehash password", "username", username, "err", err)
	}
}

// clientCredentialsGrant is RFC 6749 §4.4: the client acts for itself.
func (s *Server) clientCredentialsGrant(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error) {
	scopes := grantedScopes(req.scopes, req.client.Scopes)
	at, ttl, err := s.mintAccessToken(ctx, accessToken{client: req.client, subject: req.client.ID, scopes: scopes})
	if err != nil {
		return nil, s.internal(ctx, "mint access token", err)
	}
	s.audit(ctx, "token issued", "grant", oauth.GrantClientCredentials, "client_id", req.client.ID)
	return &oauth.TokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: ttl, Scope: strings.Join(scopes, " ")}, nil
}

// refreshGrant is RFC 6749 §6 with rotation and reuse detection
// (RFC 9700 §4.14.2).
func (s *Server) refreshGrant(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error) {
	presented := req.form.Get("refresh_token")
	if presented == "" {
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "missing refresh_token")
	}
	invalid := oauth.Errorf(oauth.ErrInvalidGrant, "refresh token is invalid, expired or revoked")
	hash := s.refreshHasher.Hash(presented)
	old, err := s.cfg.Store.GetRefreshToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalid
	}
	if err != nil {
		return nil, s.internal(ctx, "get refresh token", err)
	}
	// Checks that must not change state come before the rotation.
	if old.ClientID != req.client.ID {
		s.audit(ctx, "refresh token presented by another client", "client_id", req.client.ID, "sid", old.FamilyID)
		return nil, invalid
	}
	if !issuedWhileEnabled(req.client, old.CreatedAt) { // revoked by the client's disabling
		return nil, invalid
	}
	for _, sc := range req.scopes {
		if !slices.Contains(old.Scopes, sc) {
			return nil, oauth.Errorf(oauth.ErrInvalidScope, "scope %q was not granted", sc)
		}
	}
	u, err := s.cfg.Store.GetUserByID(ctx, old.UserID)
	if errors.Is(err, store.ErrNotFound) || err == nil && u.Disabled {
		return nil, invalid
	}
	if err != nil {
		return nil, s.internal(ctx, "get user", err)
	}
	if u, err = s.settle(ctx, u); err != nil {
		return nil, s.grantError(ctx, "settle", err)
	}
	now := s.cfg.Now().UTC()
	successor := s.successor(presented)
	next := store.RefreshToken{
		Hash: s.refreshHasher.Hash(successor), FamilyID: old.FamilyID, ClientID: old.ClientID,
		UserID: old.UserID, Scopes: old.Scopes, AuthTime: old.AuthTime,
		CreatedAt: now, ExpiresAt: s.refreshExpiry(req.client, now, old.AuthTime),
	}
	rot, err := s.cfg.Store.RotateRefreshToken(ctx, hash, next, now, s.cfg.RefreshGrace)
	switch {
	case errors.Is(err, store.ErrReused):
		s.cfg.Logger.WarnContext(ctx, "refresh token reuse detected; family revoked", "audit", true,
			"sid", old.FamilyID, "client_id", old.ClientID, "sub", old.UserID)
		// The store has revoked the family; what is left is revoking its
		// access tokens and recording the event. Should that fail, the
		// client still learns its token is invalid.
		if err := s.endSession(ctx, req.client, old, reuseDetected); err != nil {
			s.cfg.Logger.ErrorContext(ctx, "end session after refresh token reuse", "sid", old.FamilyID, "err", err)
		}
		return nil, invalid
	case errors.Is(err, store.ErrInactive), errors.Is(err, store.ErrNotFound):
		return nil, invalid
	case err != nil:
		return nil, s.internal(ctx, "rotate refresh token", err)
	}
	if rot.Successor.Hash != next.Hash { // successors are derived, never random
		return nil, s.internal(ctx, "rotate refresh token", errors.New("successor hash mismatch"))
	}
	scopes := req.scopes
	if scopes == nil {
		scopes = old.Scopes
	}
	at, ttl, err := s.mintAccessToken(ctx, accessToken{client: req.client, subject: u.ID, user: &u,
		scopes: scopes, sessionID: old.FamilyID, authTime: old.AuthTime})
	if err != nil {
		return nil, s.internal(ctx, "mint access token", err)
	}
	resp := &oauth.TokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: ttl,
		RefreshToken: successor, Scope: strings.Join(scopes, " ")}
	if err := s.addIDToken(ctx, resp, req.client, u, scopes, login{family: old.FamilyID, authTime: old.AuthTime}); err != nil {
		return nil, err
	}
	s.audit(ctx, "token refreshed", "client_id", req.client.ID, "sub", u.ID, "sid", old.FamilyID, "replayed", rot.Replayed)
	return resp, nil
}

// grantedScopes is what a grant issues: the requested scopes, or every scope
// the client may have when it asked for none (RFC 6749 §3.3 allows a
// documented default).
func grantedScopes(requested, allowed []string) []string {
	if requested != nil {
		return requested
	}
	return slices.Clone(allowed)
}
