package authserver

import (
	"context"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TokenTypeAccessToken is the token type URI of an access token (RFC 8693
// §3): the only subject_token_type the token exchange accepts, and the
// issued_token_type of every token it issues.
const TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"

// tokenExchangeGrant is RFC 8693 §2 for delegation: the authenticated client
// (a service) presents the access token it was called with and gets one for
// a narrower target that keeps the user's identity — sub, username, roles,
// sid and auth_time — and names the client in the act claim, nesting any
// earlier actor (§4.1).
//
// The rules:
//   - subject_token is an active access token of this server (a JWT it
//     signed, or one of its opaque tokens); subject_token_type must be
//     TokenTypeAccessToken. Anything else is invalid_request (RFC 8693
//     §2.2.2). A certificate-bound subject token (RFC 8705) is exchanged
//     only over a connection presenting its certificate. actor_token is
//     not supported: the actor is the authenticated client.
//   - At least one target, as audience or resource (both may repeat), and
//     every target in the client's ExchangeAudiences, else invalid_target.
//     The issued token's aud is the set of targets.
//   - scope, if given, must be within the subject token's scopes (the
//     pipeline has already checked it is within the client's), else
//     invalid_scope; if not given, the subject's scopes that the client may
//     have.
//   - The issued token has the client's format and lifetime, but never
//     outlives the subject token. No refresh token is issued.
//
// The subject token's audience is not checked against the client: a
// service exchanges the token it was called with, whose audience is the
// API it belongs to, not its client ID. What a client may obtain is bounded
// by its ExchangeAudiences and scopes instead. The issued token's client_id
// is the acting client, so only that client may revoke it; revoking the
// user's session revokes it too (it keeps the session's sid).
func (s *Server) tokenExchangeGrant(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error) {
	f := req.form
	if f.Get("subject_token") == "" {
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "missing subject_token")
	}
	if f.Get("subject_token_type") != TokenTypeAccessToken {
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "subject_token_type must be %s", TokenTypeAccessToken)
	}
	if f.Get("actor_token") != "" || f.Get("actor_token_type") != "" {
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "actor_token is not supported: the authenticated client is the actor")
	}
	if rt := f.Get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken {
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "requested_token_type must be %s", TokenTypeAccessToken)
	}
	targets, err := exchangeTargets(f, req.client)
	if err != nil {
		return nil, err
	}
	subject, err := s.findAccessToken(ctx, f.Get("subject_token"))
	if err != nil {
		return nil, s.internal(ctx, "find subject token", err)
	}
	if subject == nil || !subject.active || subject.claims.Expiry == nil {
		// RFC 8693 §2.2.2: an invalid or unacceptable subject_token is
		// invalid_request (not invalid_grant, as for other grants).
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "subject token is invalid, expired or revoked")
	}
	sc := subject.claims
	if sc.Cnf != nil {
		// A certificate-bound subject token (RFC 8705 §3) is exchanged only
		// by its holder, over a connection presenting its certificate:
		// otherwise any client allowed token exchange could turn a stolen
		// bound token into an unbound one.
		if cnf := confirmationFrom(ctx); cnf == nil || cnf.X5tS256 != sc.Cnf.X5tS256 {
			return nil, oauth.Errorf(oauth.ErrInvalidRequest,
				"subject token is bound to a client certificate this request did not present")
		}
	}
	scopes, err := exchangeScopes(req, strings.Fields(sc.Scope))
	if err != nil {
		return nil, err
	}
	t := accessToken{client: req.client, subject: sc.Subject, scopes: scopes, sessionID: sc.SessionID,
		audience: targets, actor: &jose.Actor{Subject: req.client.ID, Act: sc.Act}, notAfter: sc.Expiry.Time()}
	if sc.AuthTime != nil {
		t.authTime = sc.AuthTime.Time()
	}
	if sc.IssuedAt != nil { // dated no earlier, so ended no earlier (see accessToken.issuedAt)
		t.notBefore = sc.IssuedAt.Time()
	}
	if sc.Username != "" {
		t.user = &store.User{ID: sc.Subject, Username: sc.Username, Roles: sc.Roles}
	}
	at, ttl, err := s.mintAccessToken(ctx, t)
	if err != nil {
		return nil, s.internal(ctx, "mint access token", err)
	}
	s.audit(ctx, "token exchanged", "client_id", req.client.ID, "sub", sc.Subject, "sid", sc.SessionID,
		"subject_client_id", sc.ClientID, "aud", targets)
	return &oauth.TokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: ttl,
		Scope: strings.Join(scopes, " "), IssuedTokenType: TokenTypeAccessToken}, nil
}

// exchangeTargets returns the requested audience and resource values
// (RFC 8693 §2.1, RFC 8707 §2), sorted and without duplicates, if each is
// allowed for the client.
func exchangeTargets(f url.Values, c store.Client) ([]string, error) {
	var targets []string
	for _, a := range f["audience"] {
		if a == "" {
			return nil, oauth.Errorf(oauth.ErrInvalidTarget, "empty audience")
		}
		targets = append(targets, a)
	}
	for _, r := range f["resource"] {
		u, err := url.Parse(r)
		if err != nil || !u.IsAbs() || u.Fragment != "" {
			return nil, oauth.Errorf(oauth.ErrInvalidTarget, "resource %q is not an absolute URI without fragment", r)
		}
		targets = append(targets, r)
	}
	if len(targets) == 0 {
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "name the target with audience or resource")
	}
	for _, t := range targets {
		if !slices.Contains(c.ExchangeAudiences, t) {
			return nil, oauth.Errorf(oauth.ErrInvalidTarget, "the client may not request tokens for %q", t)
		}
	}
	slices.Sort(targets)
	return slices.Compact(targets), nil
}

// exchangeScopes narrows the subject token's scopes.
func exchangeScopes(req *tokenRequest, subject []string) ([]string, error) {
	if req.scopes != nil {
		for _, sc := range req.scopes {
			if !slices.Contains(subject, sc) {
				return nil, oauth.Errorf(oauth.ErrInvalidScope, "scope %q is not in the subject token", sc)
			}
		}
		return req.scopes, nil
	}
	var scopes []string
	for _, sc := range subject {
		if slices.Contains(req.client.Scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	return scopes, nil
}
