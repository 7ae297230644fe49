package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const pathUserinfo = "/oauth2/userinfo"

// Errors of the userinfo endpoint (RFC 6750 §3.1).
var (
	errNoToken      = &oauth.Error{Code: oauth.ErrInvalidToken, Description: "a bearer access token is required", Status: http.StatusUnauthorized}
	errInvalidToken = oauth.Errorf(oauth.ErrInvalidToken, "the access token is invalid, expired or revoked")
)

// handleUserinfo is the UserInfo endpoint (OpenID Connect Core §5.3): the
// claims about the user that the access token's scopes release. The token
// is verified here, against our own keys, without a call to anyone.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	claims, err := s.userinfo(r)
	if err == nil {
		oauth.WriteJSON(w, http.StatusOK, claims)
		return
	}
	if e, ok := errors.AsType[*oauth.Error](err); ok && e.Code != oauth.ErrServerError {
		challenge := oauth.BearerChallenge("gatehouse", e.Code, e.Description)
		if e == errNoToken { // no credentials: a challenge without an error code
			challenge = oauth.BearerChallenge("gatehouse", "", "")
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	oauth.WriteError(w, err)
}

func (s *Server) userinfo(r *http.Request) (*userClaims, error) {
	ctx := r.Context()
	scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return nil, errNoToken
	}
	raw = strings.TrimSpace(raw)
	c, err := s.verifyAccessToken(ctx, raw)
	if err != nil {
		return nil, err
	}
	if !presentedBy(r, c.Cnf) {
		return nil, oauth.Errorf(oauth.ErrInvalidToken, errBindingMismatch)
	}
	// Revoked sessions and tokens, and disabled clients, as at introspection.
	valid, err := s.stillValid(ctx, c, strings.Count(raw, ".") == 2)
	if err != nil {
		return nil, s.internal(ctx, "check access token", err)
	}
	if !valid {
		return nil, errInvalidToken
	}
	scopes := strings.Fields(c.Scope)
	if !slices.Contains(scopes, scopeOpenID) {
		return nil, oauth.Errorf(oauth.ErrInsufficientScope, "the access token lacks the openid scope")
	}
	u, err := s.cfg.Store.GetUserByID(ctx, c.Subject)
	if errors.Is(err, store.ErrNotFound) || err == nil && u.Disabled {
		return nil, errInvalidToken // a client's own token, or a user who is gone
	}
	if err != nil {
		return nil, s.internal(ctx, "get user", err)
	}
	claims := claimsFor(u, scopes)
	return &claims, nil
}

// verifyAccessToken returns the claims of an access token we issued, or
// errInvalidToken. A JWT (RFC 9068) must verify with our keys and name the
// issuer as an audience, which tokens with the openid scope do; an opaque
// token must be stored, unrevoked and unexpired.
func (s *Server) verifyAccessToken(ctx context.Context, raw string) (*jose.Claims, error) {
	if strings.Count(raw, ".") == 2 {
		c, err := jose.Verify(ctx, raw, s.keys.published(), jose.Expect{
			Issuer: s.cfg.Issuer, Audience: []string{s.cfg.Issuer},
			Types: []string{jose.TypeAccessToken}, Now: s.cfg.Now(),
		})
		if err != nil {
			return nil, errInvalidToken
		}
		return c, nil
	}
	t, err := s.cfg.Store.GetAccessToken(ctx, s.accessHasher.Hash(raw))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidToken
	}
	if err != nil {
		return nil, s.internal(ctx, "get access token", err)
	}
	var c jose.Claims
	if t.RevokedAt != nil || !s.cfg.Now().Before(t.ExpiresAt) || json.Unmarshal(t.Claims, &c) != nil {
		return nil, errInvalidToken
	}
	c.Subject = t.Subject
	return &c, nil
}
