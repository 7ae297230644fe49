package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// What a presented token is: the token_type_hint values of RFC 7009 §2.1 and
// RFC 7662 §2.1.
const (
	useAccess  = "access_token"
	useRefresh = "refresh_token"
)

// maxPresentedToken bounds the tokens the server looks up (jose.Verify has
// the same bound); anything longer is not one of ours.
const maxPresentedToken = 16 << 10

// foundToken is a token this server issued, found by its value.
type foundToken struct {
	use string // useAccess or useRefresh
	// claims are what the token carries; for a refresh token, the claims
	// of its record (and the user's name and roles when it is active).
	claims  *jose.Claims
	opaque  *store.AccessToken  // set for an opaque access token
	refresh *store.RefreshToken // set for a refresh token
	// active: unexpired, unrevoked, its session not revoked, its user
	// neither deleted nor disabled (and, for an access token, its user's
	// tokens not ended since it was issued), its client enabled and not
	// disabled since the token was issued.
	active bool
}

// findToken looks raw up as each kind of token this server issues, the
// hinted kind first. Per RFC 7009 §2.1 and RFC 7662 §2.1 the hint only
// orders the search; an unknown hint is ignored. It returns nil, nil for a
// value that is no token of ours, malformed ones included.
func (s *Server) findToken(ctx context.Context, raw, hint string) (*foundToken, error) {
	order := []func(context.Context, string) (*foundToken, error){s.findAccessToken, s.findRefreshToken}
	if hint == useRefresh {
		order[0], order[1] = order[1], order[0]
	}
	for _, find := range order {
		if t, err := find(ctx, raw); t != nil || err != nil {
			return t, err
		}
	}
	return nil, nil
}

// findAccessToken looks raw up as a JWT access token signed by this server
// or as an opaque access token.
func (s *Server) findAccessToken(ctx context.Context, raw string) (*foundToken, error) {
	if raw == "" || len(raw) > maxPresentedToken {
		return nil, nil
	}
	if strings.Count(raw, ".") == 2 {
		return s.findJWT(ctx, raw)
	}
	rec, err := s.cfg.Store.GetAccessToken(ctx, s.accessHasher.Hash(raw))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get opaque access token: %w", err)
	}
	var c jose.Claims
	if err := json.Unmarshal(rec.Claims, &c); err != nil {
		return nil, fmt.Errorf("claims of stored access token: %w", err)
	}
	t := &foundToken{use: useAccess, claims: &c, opaque: &rec}
	t.active = rec.RevokedAt == nil && s.cfg.Now().Before(rec.ExpiresAt)
	if t.active {
		t.active, err = s.stillValid(ctx, &c, false)
	}
	return t, err
}

// findJWT verifies raw as an access token of this server: signed by one of
// its published keys, its issuer, typ at+jwt. The server accepts its own
// tokens whatever their audience, so the audience checked is the token's.
func (s *Server) findJWT(ctx context.Context, raw string) (*foundToken, error) {
	aud := unverifiedAudience(raw)
	if len(aud) == 0 {
		return nil, nil
	}
	now := s.cfg.Now()
	c, err := jose.Verify(ctx, raw, s.keys.published(), jose.Expect{
		Issuer: s.cfg.Issuer, Audience: aud, Types: []string{jose.TypeAccessToken}, Now: now,
	})
	if errors.Is(err, jose.ErrInvalid) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify access token: %w", err)
	}
	// Verify tolerates clock skew; the issuer's own answer does not.
	t := &foundToken{use: useAccess, claims: c, active: now.Before(c.Expiry.Time())}
	if t.active {
		t.active, err = s.stillValid(ctx, c, true)
	}
	return t, err
}

// unverifiedAudience returns the "aud" claim of a compact JWS without
// verifying it, or nil if there is none.
func unverifiedAudience(raw string) []string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var c struct {
		Audience jose.Audience `json:"aud"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return nil
	}
	return c.Audience
}

// stillValid checks what can end an unexpired access token early: its
// client disabled since it was issued, a revocation marker, its user
// deleted or disabled, and its user's tokens ended since it was issued
// (see issuedForCurrentUser).
func (s *Server) stillValid(ctx context.Context, c *jose.Claims, jwt bool) (bool, error) {
	var iat time.Time
	if c.IssuedAt != nil {
		iat = c.IssuedAt.Time()
	}
	if ok, err := s.clientAllows(ctx, c.ClientID, iat); !ok || err != nil {
		return false, err
	}
	revoked, err := s.revoked(ctx, c, jwt)
	if err != nil || revoked {
		return false, err
	}
	if c.Username == "" { // the client acting for itself
		return true, nil
	}
	u, err := s.cfg.Store.GetUserByID(ctx, c.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get user: %w", err)
	}
	return issuedForCurrentUser(u, iat), nil
}

// findRefreshToken looks raw up as a refresh token.
func (s *Server) findRefreshToken(ctx context.Context, raw string) (*foundToken, error) {
	if raw == "" || len(raw) > maxPresentedToken {
		return nil, nil
	}
	rt, err := s.cfg.Store.GetRefreshToken(ctx, s.refreshHasher.Hash(raw))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get refresh token: %w", err)
	}
	c := &jose.Claims{
		Issuer: s.cfg.Issuer, Subject: rt.UserID, ClientID: rt.ClientID, Scope: strings.Join(rt.Scopes, " "),
		SessionID: rt.FamilyID, IssuedAt: jose.NewNumericDate(rt.CreatedAt), Expiry: jose.NewNumericDate(rt.ExpiresAt),
		AuthTime: jose.NewNumericDate(rt.AuthTime),
	}
	t := &foundToken{use: useRefresh, claims: c, refresh: &rt, active: rt.Active(s.cfg.Now())}
	if t.active {
		t.active, err = s.clientAllows(ctx, rt.ClientID, rt.CreatedAt)
	}
	if !t.active || err != nil {
		return t, err
	}
	u, err := s.cfg.Store.GetUserByID(ctx, rt.UserID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		t.active = false
	case err != nil:
		return nil, fmt.Errorf("get user: %w", err)
	default:
		// Not issuedForCurrentUser: what ends a user's sessions (password
		// changed, user disabled, all sessions revoked) revokes their
		// refresh tokens in the store, and a roles change leaves sessions
		// alone, their next access token carrying the new roles.
		t.active = !u.Disabled
		c.Username, c.Roles = u.Username, u.Roles
	}
	return t, nil
}

// clientAllows reports whether a token issued to the client clientID at
// issuedAt may still be used as far as its client goes: the client exists,
// and is enabled and was not disabled since (see issuedWhileEnabled).
func (s *Server) clientAllows(ctx context.Context, clientID string, issuedAt time.Time) (bool, error) {
	c, err := s.clients.get(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get client: %w", err)
	}
	return issuedWhileEnabled(c, issuedAt), nil
}

// issuedWhileEnabled reports whether a token c was issued at issuedAt
// survives c's disabling: only if c is enabled now and issuedAt is after
// the last time c was disabled. Enabling a client again does not bring
// its earlier tokens back, just as the receivers of its client-disabled
// event keep refusing them; a token issued in the very second of the
// disabling (a JWT's iat has whole seconds) counts as issued before it.
func issuedWhileEnabled(c store.Client, issuedAt time.Time) bool {
	return !c.Disabled && (c.DisabledAt == nil || issuedAt.After(*c.DisabledAt))
}

// issuedForCurrentUser reports whether an access token for u issued at
// issuedAt may still be used as far as u goes: u is enabled, and issuedAt
// is after u.TokensNotBefore, the last password change, disabling, roles
// change or revocation of all sessions. As with issuedWhileEnabled, enabling
// u again does not bring earlier tokens back, just as the receivers of
// those events keep refusing them; a token issued in the very second of the
// change (a JWT's iat has whole seconds) counts as issued before it. Grants
// for u in that second wait for the next one before they mint (see
// Server.settle), so a login right after a change works.
func issuedForCurrentUser(u store.User, issuedAt time.Time) bool {
	return !u.Disabled && (u.TokensNotBefore == nil || issuedAt.After(*u.TokensNotBefore))
}
