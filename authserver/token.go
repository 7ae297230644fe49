package authserver

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// tokenRequest is a token request that passed the shared checks.
type tokenRequest struct {
	form   url.Values
	client store.Client
	// scopes are the requested scopes, each allowed for the client; nil if
	// the request named none.
	scopes []string
	// addr is the end user's network address as seen by this server.
	addr string
}

// publicGrants are the grants a public client (authenticated with "none")
// may use: the authorization code grant, where PKCE binds the code to the
// client instance, and refreshing what it issued.
var publicGrants = []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken}

// grant runs one grant type on a request that passed the shared checks.
type grant func(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error)

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	resp, err := s.token(w, r)
	noteOutcome(r.Context(), err)
	if err != nil {
		oauth.WriteError(w, err)
		return
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
}

// token is the one pipeline every grant runs through.
func (s *Server) token(w http.ResponseWriter, r *http.Request) (*oauth.TokenResponse, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "use POST", Status: http.StatusMethodNotAllowed}
	}
	form, err := s.parseForm(w, r)
	if err != nil {
		return nil, err
	}
	s.noteGrant(r.Context(), form.Get("grant_type"))
	client, err := s.authenticateClient(r.Context(), r, form)
	if err != nil {
		return nil, err
	}
	gt := form.Get("grant_type")
	if gt == "" {
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "missing grant_type")
	}
	run, ok := s.grants[gt]
	if !ok {
		return nil, oauth.Errorf(oauth.ErrUnsupportedGrantType, "grant type %q is not supported", gt)
	}
	if !slices.Contains(client.Grants, gt) || client.Public && !slices.Contains(publicGrants, gt) {
		return nil, oauth.Errorf(oauth.ErrUnauthorizedClient, "client is not allowed the %s grant", gt)
	}
	scopes, err := requestedScopes(form, client)
	if err != nil {
		return nil, err
	}
	cnf, err := s.certificateBinding(r, client)
	if err != nil {
		return nil, err
	}
	return run(withConfirmation(r.Context(), cnf), &tokenRequest{form: form, client: client, scopes: scopes, addr: r.RemoteAddr})
}

// repeatable are the parameters that may appear more than once: RFC 8693
// §2.1 and RFC 8707 §2 allow several audience and resource values.
var repeatable = map[string]bool{"audience": true, "resource": true}

// parseForm reads an application/x-www-form-urlencoded body of bounded size
// and rejects repeated parameters (RFC 6749 §3.2) other than repeatable ones.
func (s *Server) parseForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "content type must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "request body too large", Status: http.StatusRequestEntityTooLarge}
		}
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "cannot read request body")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "malformed form body")
	}
	for k, v := range form {
		if len(v) > 1 && !repeatable[k] {
			return nil, oauth.Errorf(oauth.ErrInvalidRequest, "parameter %q is repeated", k)
		}
	}
	return form, nil
}

// basicChallenge is sent with invalid_client when the client used Basic.
const basicChallenge = `Basic realm="gatehouse", charset="UTF-8"`

// clientCredential is what a request presented to authenticate its client.
type clientCredential struct {
	id     string
	method string // the store.Auth* method the request used
	secret string // for the client_secret_* methods
	// challenge is sent with invalid_client: set when Basic was used.
	challenge string
}

// authenticateClient authenticates the client by the method it used, which
// must be the method it is registered for (RFC 7591 §2), and costs the same
// for unknown clients. Secrets are compared in constant time (RFC 6749
// §2.3.1); "none" is only for public clients (RFC 6749 §2.1), which the
// pipeline then restricts to PKCE-bound grants. A request with a client
// assertion goes to authenticateAssertion (private_key_jwt, RFC 7523).
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (store.Client, error) {
	if hasClientAssertion(form) {
		return s.authenticateAssertion(ctx, r, form)
	}
	cred, err := clientCredentials(r, form)
	if err != nil {
		return store.Client{}, err
	}
	fail := &oauth.Error{Code: oauth.ErrInvalidClient, Description: "client authentication failed", Challenge: cred.challenge}
	c, err := s.clients.get(ctx, cred.id)
	if errors.Is(err, store.ErrNotFound) {
		s.secretHasher.Verify(cred.secret, strings.Repeat("0", 64)) // same cost as a wrong secret
		s.audit(ctx, "client authentication failed", "client_id", cred.id, "reason", "unknown client")
		return store.Client{}, fail
	}
	if err != nil {
		return store.Client{}, s.internal(ctx, "get client", err)
	}
	registered := authMethod(c)
	if registered == store.AuthTLSClientAuth && cred.method == store.AuthNone {
		cred.method = registered // client_id alone, and the certificate (RFC 8705 §2)
	}
	if cred.method != registered {
		s.audit(ctx, "client authentication failed", "client_id", cred.id, "reason", "wrong method",
			"method", cred.method, "registered", registered)
		return store.Client{}, fail
	}
	ok := false
	switch cred.method {
	case store.AuthClientSecretBasic, store.AuthClientSecretPost:
		matches := func(c store.Client) bool {
			return !c.Public && c.SecretHash != "" && s.secretHasher.Verify(cred.secret, c.SecretHash)
		}
		ok = matches(c)
		if !ok {
			// The secret may have been set elsewhere (another replica, the
			// CLI on the store) since the cached record was read: read it
			// again before refusing, so a new secret works at once. Only
			// failures pay for the read.
			if fresh, err := s.clients.reload(ctx, cred.id); err == nil && authMethod(fresh) == cred.method {
				c, ok = fresh, matches(fresh)
			}
		}
	case store.AuthNone:
		ok = c.Public
	case store.AuthTLSClientAuth:
		authenticated, reason := s.certificateAuthenticates(r, c)
		if !authenticated {
			s.audit(ctx, "client authentication failed", "client_id", cred.id, "method", cred.method, "reason", reason)
			return store.Client{}, fail
		}
		ok = true
	}
	if !ok || c.Disabled {
		s.audit(ctx, "client authentication failed", "client_id", cred.id, "reason", "bad credentials or disabled")
		return store.Client{}, fail
	}
	return c, nil
}

// authMethod is the client's registered token_endpoint_auth_method, with
// the default of store.Client.AuthMethod applied.
func authMethod(c store.Client) string {
	switch {
	case c.AuthMethod != "":
		return c.AuthMethod
	case c.Public:
		return store.AuthNone
	default:
		return store.AuthClientSecretBasic
	}
}

// clientCredentials finds how the client authenticates: a Basic header
// (client_secret_basic), client_id and client_secret in the body
// (client_secret_post), or client_id alone (none). Using both the header
// and the body, or nothing, is an error.
func clientCredentials(r *http.Request, form url.Values) (clientCredential, error) {
	hasPost := form.Has("client_id") || form.Has("client_secret")
	if h := r.Header.Get("Authorization"); h != "" {
		bad := &oauth.Error{Code: oauth.ErrInvalidClient, Description: "malformed Basic credentials", Challenge: basicChallenge}
		if hasPost {
			return clientCredential{}, oauth.Errorf(oauth.ErrInvalidRequest, "use one client authentication method")
		}
		user, pass, ok := r.BasicAuth()
		if !ok {
			return clientCredential{}, bad
		}
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil || id == "" {
			return clientCredential{}, bad
		}
		return clientCredential{id: id, method: store.AuthClientSecretBasic, secret: secret, challenge: basicChallenge}, nil
	}
	id := form.Get("client_id")
	switch {
	case id == "":
		return clientCredential{}, &oauth.Error{Code: oauth.ErrInvalidClient, Description: "client authentication required", Challenge: basicChallenge}
	case form.Has("client_secret"):
		return clientCredential{id: id, method: store.AuthClientSecretPost, secret: form.Get("client_secret")}, nil
	default:
		return clientCredential{id: id, method: store.AuthNone}, nil
	}
}

// requestedScopes parses the scope parameter (RFC 6749 §3.3) and checks
// every scope is allowed for the client.
func requestedScopes(form url.Values, c store.Client) ([]string, error) {
	if !form.Has("scope") {
		return nil, nil
	}
	scopes := strings.Fields(form.Get("scope"))
	if len(scopes) == 0 {
		return nil, oauth.Errorf(oauth.ErrInvalidScope, "empty scope")
	}
	for _, sc := range scopes {
		if !slices.Contains(c.Scopes, sc) {
			return nil, oauth.Errorf(oauth.ErrInvalidScope, "scope %q is not allowed for this client", sc)
		}
	}
	slices.Sort(scopes)
	return slices.Compact(scopes), nil
}

// verifyPassword runs argon2id with bounded concurrency; an unknown user is
// checked against s.dummyHash so it costs the same as a wrong password.
func (s *Server) verifyPassword(ctx context.Context, pw, hash string) (ok, rehash bool, err error) {
	select {
	case s.hashSem <- struct{}{}:
	case <-ctx.Done():
		return false, false, ctx.Err()
	}
	defer func() { <-s.hashSem }()
	defer s.metrics.timeHash()()
	if hash == "" {
		password.Verify(pw, s.dummyHash, s.cfg.PasswordParams)
		return false, false, nil
	}
	return password.Verify(pw, hash, s.cfg.PasswordParams)
}

// audit logs a security event. Never pass a secret or a token.
func (s *Server) audit(ctx context.Context, event string, args ...any) {
	s.cfg.Logger.InfoContext(ctx, event, append([]any{"audit", true}, args...)...)
}
