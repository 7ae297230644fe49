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
	if !slices.Contains(client.Grants, gt) {
		return nil, oauth.Errorf(oauth.ErrUnauthorizedClient, "client is not allowed the %s grant", gt)
	}
	scopes, err := requestedScopes(form, client)
	if err != nil {
		return nil, err
	}
	return run(r.Context(), &tokenRequest{form: form, client: client, scopes: scopes, addr: r.RemoteAddr})
}

// parseForm reads an application/x-www-form-urlencoded body of bounded size
// and rejects repeated parameters (RFC 6749 §3.2).
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
		if len(v) > 1 {
			return nil, oauth.Errorf(oauth.ErrInvalidRequest, "parameter %q is repeated", k)
		}
	}
	return form, nil
}

// basicChallenge is sent with invalid_client when the client used Basic.
const basicChallenge = `Basic realm="gatehouse", charset="UTF-8"`

// authenticateClient checks client_secret_basic or client_secret_post
// (RFC 6749 §2.3.1) in constant time, and costs the same for unknown clients;
// a request with a client assertion goes to authenticateAssertion
// (private_key_jwt), and a private_key_jwt client cannot use a secret.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (store.Client, error) {
	if hasClientAssertion(form) {
		return s.authenticateAssertion(ctx, r, form)
	}
	id, secret, challenge, err := clientCredentials(r, form)
	if err != nil {
		return store.Client{}, err
	}
	fail := &oauth.Error{Code: oauth.ErrInvalidClient, Description: "client authentication failed", Challenge: challenge}
	c, err := s.cfg.Store.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		s.secretHasher.Verify(secret, strings.Repeat("0", 64)) // same cost as a wrong secret
		s.audit(ctx, "client authentication failed", "client_id", id, "reason", "unknown client")
		return store.Client{}, fail
	}
	if err != nil {
		return store.Client{}, s.internal(ctx, "get client", err)
	}
	if c.Public || c.SecretHash == "" || c.AuthMethod == store.AuthPrivateKeyJWT || !s.secretHasher.Verify(secret, c.SecretHash) || c.Disabled {
		s.audit(ctx, "client authentication failed", "client_id", id, "reason", "bad secret or disabled")
		return store.Client{}, fail
	}
	return c, nil
}

// clientCredentials extracts the client's ID and secret from the Basic
// header or the body; using both, or neither, is an error.
func clientCredentials(r *http.Request, form url.Values) (id, secret, challenge string, err error) {
	hasPost := form.Has("client_id") || form.Has("client_secret")
	if h := r.Header.Get("Authorization"); h != "" {
		challenge = basicChallenge
		if hasPost {
			return "", "", "", oauth.Errorf(oauth.ErrInvalidRequest, "use one client authentication method")
		}
		user, pass, ok := r.BasicAuth()
		if !ok {
			return "", "", "", &oauth.Error{Code: oauth.ErrInvalidClient, Description: "malformed Basic credentials", Challenge: challenge}
		}
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil || id == "" {
			return "", "", "", &oauth.Error{Code: oauth.ErrInvalidClient, Description: "malformed Basic credentials", Challenge: challenge}
		}
		return id, secret, challenge, nil
	}
	if form.Get("client_id") == "" || form.Get("client_secret") == "" {
		return "", "", "", &oauth.Error{Code: oauth.ErrInvalidClient, Description: "client authentication required", Challenge: basicChallenge}
	}
	return form.Get("client_id"), form.Get("client_secret"), "", nil
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
