package authserver

import (
	"net/http"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// introspection is an introspection response (RFC 7662 §2.2). An inactive
// token gets {"active": false} and nothing else.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	// TokenUse says what the token is: "access_token" or "refresh_token"
	// (an extension; only access tokens have a token_type).
	TokenUse  string            `json:"token_use,omitempty"`
	Expiry    *jose.NumericDate `json:"exp,omitempty"`
	IssuedAt  *jose.NumericDate `json:"iat,omitempty"`
	NotBefore *jose.NumericDate `json:"nbf,omitempty"`
	Subject   string            `json:"sub,omitempty"`
	Audience  jose.Audience     `json:"aud,omitempty"`
	Issuer    string            `json:"iss,omitempty"`
	ID        string            `json:"jti,omitempty"`
	SessionID string            `json:"sid,omitempty"`
	Roles     []string          `json:"roles,omitempty"`
	AuthTime  *jose.NumericDate `json:"auth_time,omitempty"`
	Act       *jose.Actor       `json:"act,omitempty"`
	// Cnf is the certificate the token is bound to (RFC 8705 §3.2).
	Cnf *jose.Confirmation `json:"cnf,omitempty"`
}

func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	resp, err := s.introspect(w, r)
	if err != nil {
		oauth.WriteError(w, err)
		return
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
}

// introspect is RFC 7662 §2. Any authenticated client may introspect an
// access token: resource servers (the gateway) introspect the tokens of
// other clients, which is what the endpoint is for. A refresh token is only
// ever presented by its own client, so to any other client it is inactive:
// no client learns about another's sessions, and a resource server that
// wrongly accepts a refresh token as a bearer token finds it inactive.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) (*introspection, error) {
	client, form, err := s.clientRequest(w, r)
	if err != nil {
		return nil, err
	}
	raw := form.Get("token")
	if raw == "" {
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "missing token")
	}
	t, err := s.findToken(r.Context(), raw, form.Get("token_type_hint"))
	if err != nil {
		return nil, s.internal(r.Context(), "introspect", err)
	}
	inactive := &introspection{Active: false}
	if t == nil || !t.active || t.use == useRefresh && t.claims.ClientID != client.ID {
		return inactive, nil
	}
	c := t.claims
	resp := &introspection{
		Active: true, Scope: c.Scope, ClientID: c.ClientID, Username: c.Username, TokenUse: t.use,
		Expiry: c.Expiry, IssuedAt: c.IssuedAt, NotBefore: c.NotBefore, Subject: c.Subject,
		Audience: c.Audience, Issuer: c.Issuer, ID: c.ID, SessionID: c.SessionID, Roles: c.Roles,
		AuthTime: c.AuthTime, Act: c.Act, Cnf: c.Cnf,
	}
	if t.use == useAccess {
		resp.TokenType = "Bearer"
	}
	return resp, nil
}

// clientRequest runs the checks the introspection and revocation endpoints
// share with the token endpoint: POST, a bounded form without repeated
// parameters, client authentication.
func (s *Server) clientRequest(w http.ResponseWriter, r *http.Request) (store.Client, url.Values, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return store.Client{}, nil, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "use POST", Status: http.StatusMethodNotAllowed}
	}
	form, err := s.parseForm(w, r)
	if err != nil {
		return store.Client{}, nil, err
	}
	client, err := s.authenticateClient(r.Context(), r, form)
	if err != nil {
		return store.Client{}, nil, err
	}
	return client, form, nil
}
