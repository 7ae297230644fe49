package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Client assertions: private_key_jwt client authentication (RFC 7523 §2.2,
// RFC 7521 §4.2, OpenID Connect Core §9).
const (
	// assertionTypeJWT is the only client_assertion_type accepted.
	assertionTypeJWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// maxAssertionLifetime bounds how far in the future an assertion's exp
	// may be (plus the verification leeway), so the replay cache stays small
	// and a leaked assertion is soon useless.
	maxAssertionLifetime = 5 * time.Minute
	// maxJTILength bounds the jti kept in the replay cache.
	maxJTILength = 256
)

// hasClientAssertion reports whether the request authenticates the client
// with an assertion rather than a secret.
func hasClientAssertion(form url.Values) bool {
	return form.Has("client_assertion") || form.Has("client_assertion_type")
}

// authenticateAssertion authenticates a client registered for
// private_key_jwt: client_assertion must be a JWT signed with a key of the
// client's registered JWKS, with iss and sub the client ID, aud the token
// endpoint or the issuer, a short exp and a jti never seen before. Every
// failure is invalid_client, and the reason is only logged.
func (s *Server) authenticateAssertion(ctx context.Context, r *http.Request, form url.Values) (store.Client, error) {
	if r.Header.Get("Authorization") != "" || form.Has("client_secret") {
		return store.Client{}, oauth.Errorf(oauth.ErrInvalidRequest, "use one client authentication method")
	}
	raw := form.Get("client_assertion")
	if raw == "" || form.Get("client_assertion_type") == "" {
		return store.Client{}, oauth.Errorf(oauth.ErrInvalidRequest, "client_assertion and client_assertion_type go together")
	}
	fail := &oauth.Error{Code: oauth.ErrInvalidClient, Description: "client authentication failed"}
	if form.Get("client_assertion_type") != assertionTypeJWT {
		s.authFailed(ctx, form.Get("client_id"), "unsupported client_assertion_type")
		return store.Client{}, &oauth.Error{Code: oauth.ErrInvalidClient, Description: "unsupported client_assertion_type"}
	}
	// RFC 7521 §4.2: client_id is optional; when present it must be the
	// assertion's subject. Without it, the unverified issuer chooses the
	// keys, and Verify then checks that issuer against them.
	id := form.Get("client_id")
	if id == "" {
		var err error
		if id, err = jose.UnverifiedIssuer(raw); err != nil {
			s.authFailed(ctx, "", "malformed client assertion")
			return store.Client{}, fail
		}
	}
	c, err := s.cfg.Store.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		s.authFailed(ctx, id, "unknown client")
		return store.Client{}, fail
	}
	if err != nil {
		return store.Client{}, s.internal(ctx, "get client", err)
	}
	if c.Disabled || c.AuthMethod != store.AuthPrivateKeyJWT {
		s.authFailed(ctx, id, "client disabled or not registered for private_key_jwt")
		return store.Client{}, fail
	}
	reason, err := s.verifyAssertion(ctx, c, raw)
	if err != nil {
		return store.Client{}, s.internal(ctx, "record client assertion jti", err)
	}
	if reason != "" {
		s.authFailed(ctx, id, reason)
		return store.Client{}, fail
	}
	return c, nil
}

// verifyAssertion checks raw for client c and records its jti. It returns
// why the assertion is refused, or "" if it is accepted; err reports a
// store failure.
func (s *Server) verifyAssertion(ctx context.Context, c store.Client, raw string) (reason string, err error) {
	keys, err := jose.ParseKeySet(c.JWKS)
	if err != nil {
		s.cfg.Logger.ErrorContext(ctx, "registered client JWKS does not parse", "client_id", c.ID, "err", err)
		return "registered JWKS does not parse", nil
	}
	now := s.cfg.Now()
	claims, err := jose.Verify(ctx, raw, keys, jose.Expect{
		Issuer:       c.ID,
		Audience:     []string{s.TokenURL(), s.cfg.Issuer},
		Types:        []string{jose.TypeJWT},
		AllowUntyped: true,
		Algorithms:   jose.AllAlgorithms(),
		Now:          now,
	})
	if err != nil {
		return err.Error(), nil
	}
	switch {
	case claims.Subject != c.ID:
		return "sub is not the client ID", nil
	case claims.ID == "" || len(claims.ID) > maxJTILength:
		return "jti missing or too long", nil
	case claims.Expiry.Time().After(now.Add(maxAssertionLifetime + jose.DefaultLeeway)):
		return "exp too far in the future", nil
	}
	// Verify accepts the assertion until exp plus the leeway, so the jti is
	// remembered as long.
	until := claims.Expiry.Time().Add(jose.DefaultLeeway)
	err = s.cfg.Store.UseJTI(ctx, "client-assertion:"+c.ID+":"+claims.ID, until, now)
	if errors.Is(err, store.ErrAlreadyExists) {
		return "jti replayed", nil
	}
	return "", err
}

// authFailed records a failed client authentication.
func (s *Server) authFailed(ctx context.Context, clientID, reason string) {
	s.audit(ctx, "client authentication failed", "client_id", clientID, "method", store.AuthPrivateKeyJWT, "reason", reason)
}
