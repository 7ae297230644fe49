package authserver

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Paths of the authorization endpoint and of the forms its pages post to.
const (
	pathAuthorize = "/oauth2/authorize"
	pathLogin     = "/oauth2/authorize/login"
	pathConsent   = "/oauth2/authorize/consent"
)

// maxEchoLen bounds state and nonce, which travel back to the client.
const maxEchoLen = 1024

// authRequest is an authorization request (RFC 6749 §4.1.1, OpenID Connect
// Core §3.1.2.1) whose client and redirect URI are known to belong together.
type authRequest struct {
	client        store.Client
	redirectURI   string
	state         string
	scopes        []string
	nonce         string
	codeChallenge string // S256 only
	promptNone    bool
	promptLogin   bool
	promptConsent bool
	maxAge        int64 // seconds; negative when absent
}

// pageError is shown to the user as a page, because the request cannot go
// back to its client: the client or its redirect URI is not known to be
// genuine (RFC 6749 §4.1.2.1; §10.15 — no open redirector), or a form of
// ours was forged or has expired.
type pageError struct {
	status  int
	message string
}

func (e *pageError) Error() string { return e.message }

var (
	errForgedForm  = &pageError{http.StatusForbidden, "This form has expired or was not sent from this site."}
	errExpiredForm = &pageError{http.StatusBadRequest, "This form has expired."}
)

// redirectError is sent back to the client at its redirect URI
// (RFC 6749 §4.1.2.1).
type redirectError struct {
	req *authRequest
	err *oauth.Error
}

func (e *redirectError) Error() string { return e.err.Error() }

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	s.writeAuthorize(w, r, s.authorize(w, r))
}

// pageParams are the parameters of a request to one of the server's pages:
// its form when POSTed (read by readPageForm), else its query.
func (s *Server) pageParams(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method == http.MethodPost {
		return s.readPageForm(w, r)
	}
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &pageError{http.StatusBadRequest, "The request is malformed."}
	}
	return params, nil
}

// authorize answers an authorization request: the login page, the consent
// page, or a redirect to the client with a code.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) error {
	params, err := s.pageParams(w, r)
	if err != nil {
		return err
	}
	req, err := s.parseAuthRequest(r.Context(), params)
	if err != nil {
		return err
	}
	sess, user, err := s.currentUser(r.Context(), r)
	if err != nil {
		return err
	}
	return s.proceed(w, r, req, sess, user, false)
}

// writeAuthorize renders what authorize and the form handlers return.
func (s *Server) writeAuthorize(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		return
	}
	if re, ok := errors.AsType[*redirectError](err); ok {
		v := url.Values{"error": {re.err.Code}}
		if re.err.Description != "" {
			v.Set("error_description", re.err.Description)
		}
		s.redirectToClient(w, r, re.req, v)
		return
	}
	pe, ok := errors.AsType[*pageError](err)
	if !ok {
		pe = &pageError{http.StatusInternalServerError, "Something went wrong on our side."}
	}
	renderPage(w, pe.status, errorPage, errorData{Title: "Cannot continue", Message: pe.message}, "")
}

// readPageForm reads a form body of bounded size.
func (s *Server) readPageForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &pageError{http.StatusUnsupportedMediaType, "The form was not sent as a form."}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		return nil, &pageError{http.StatusRequestEntityTooLarge, "The form is too large."}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &pageError{http.StatusBadRequest, "The form is malformed."}
	}
	return form, nil
}

// parseAuthRequest validates an authorization request. Until its client and
// redirect URI are known to belong together, errors are *pageError; after,
// *redirectError.
func (s *Server) parseAuthRequest(ctx context.Context, p url.Values) (*authRequest, error) {
	clientID, ok1 := single(p, "client_id")
	redirectURI, ok2 := single(p, "redirect_uri")
	if !ok1 || !ok2 || clientID == "" {
		return nil, &pageError{http.StatusBadRequest, "The request does not name the application exactly once."}
	}
	c, err := s.cfg.Store.GetClient(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) || err == nil && c.Disabled {
		return nil, &pageError{http.StatusBadRequest, "The application that sent you here is not registered."}
	}
	if err != nil {
		return nil, s.internal(ctx, "get client", err)
	}
	if redirectURI == "" {
		return nil, &pageError{http.StatusBadRequest, "The request has no redirect URI."}
	}
	if !slices.Contains(c.RedirectURIs, redirectURI) { // exact match (RFC 9700 §4.1.3)
		return nil, &pageError{http.StatusBadRequest, "The redirect URI is not registered for this application."}
	}
	req := &authRequest{client: c, redirectURI: redirectURI, maxAge: -1}
	if state, ok := single(p, "state"); ok && len(state) <= maxEchoLen {
		req.state = state
	}
	if err := req.parse(p); err != nil {
		return nil, &redirectError{req: req, err: err}
	}
	return req, nil
}

// parse reads the parameters that follow the redirect URI.
func (a *authRequest) parse(p url.Values) *oauth.Error {
	for k, v := range p {
		if len(v) > 1 {
			return oauth.Errorf(oauth.ErrInvalidRequest, "parameter %q is repeated", k)
		}
	}
	switch rt := p.Get("response_type"); {
	case rt == "":
		return oauth.Errorf(oauth.ErrInvalidRequest, "missing response_type")
	case rt != "code":
		return oauth.Errorf(oauth.ErrUnsupportedResponseType, "response_type must be code")
	}
	switch {
	case len(p.Get("state")) > maxEchoLen || len(p.Get("nonce")) > maxEchoLen:
		return oauth.Errorf(oauth.ErrInvalidRequest, "state and nonce are limited to %d bytes", maxEchoLen)
	case p.Get("response_mode") != "" && p.Get("response_mode") != "query":
		return oauth.Errorf(oauth.ErrInvalidRequest, "response_mode must be query")
	case p.Has("request"):
		return oauth.Errorf(oauth.ErrRequestNotSupported, "request objects are not supported")
	case p.Has("request_uri"):
		return oauth.Errorf(oauth.ErrRequestURINotSupported, "request_uri is not supported")
	case !slices.Contains(a.client.Grants, oauth.GrantAuthorizationCode):
		return oauth.Errorf(oauth.ErrUnauthorizedClient, "client is not allowed the %s grant", oauth.GrantAuthorizationCode)
	}
	scopes, err := requestedScopes(p, a.client)
	if err != nil {
		e, _ := errors.AsType[*oauth.Error](err)
		return e
	}
	if scopes == nil {
		scopes = slices.Sorted(slices.Values(a.client.Scopes))
	}
	a.scopes, a.nonce = scopes, p.Get("nonce")
	if err := a.parsePKCE(p); err != nil {
		return err
	}
	return a.parsePrompt(p)
}

// parsePKCE requires an S256 challenge from public clients and accepts one
// from any client (RFC 7636 §4.3, RFC 9700 §2.1.1).
func (a *authRequest) parsePKCE(p url.Values) *oauth.Error {
	challenge, method := p.Get("code_challenge"), p.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return oauth.Errorf(oauth.ErrInvalidRequest, "code_challenge_method without code_challenge")
	case challenge == "" && a.client.Public:
		return oauth.Errorf(oauth.ErrInvalidRequest, "PKCE is required: send code_challenge with code_challenge_method S256")
	case challenge == "":
		return nil
	case method != pkceS256:
		return oauth.Errorf(oauth.ErrInvalidRequest, "code_challenge_method must be S256")
	case !validChallenge(challenge):
		return oauth.Errorf(oauth.ErrInvalidRequest, "code_challenge must be 43 base64url characters")
	}
	a.codeChallenge = challenge
	return nil
}

// parsePrompt reads prompt and max_age (OpenID Connect Core §3.1.2.1).
func (a *authRequest) parsePrompt(p url.Values) *oauth.Error {
	for _, v := range strings.Fields(p.Get("prompt")) {
		switch v {
		case "none":
			a.promptNone = true
		case "login":
			a.promptLogin = true
		case "consent":
			a.promptConsent = true
		case "select_account": // one account per browser: nothing to select
		default:
			return oauth.Errorf(oauth.ErrInvalidRequest, "unknown prompt value %q", v)
		}
	}
	if a.promptNone && (a.promptLogin || a.promptConsent) {
		return oauth.Errorf(oauth.ErrInvalidRequest, "prompt none cannot be combined with other values")
	}
	if v := p.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return oauth.Errorf(oauth.ErrInvalidRequest, "max_age must be a number of seconds")
		}
		a.maxAge = n
	}
	return nil
}

// params returns the request in normalized form, to be carried through the
// login and consent forms.
func (a *authRequest) params() url.Values {
	v := url.Values{"client_id": {a.client.ID}, "redirect_uri": {a.redirectURI}, "response_type": {"code"}}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("scope", strings.Join(a.scopes, " ")) // an empty scope parameter is invalid
	set("state", a.state)
	set("nonce", a.nonce)
	if a.codeChallenge != "" {
		v.Set("code_challenge", a.codeChallenge)
		v.Set("code_challenge_method", pkceS256)
	}
	var prompt []string
	for _, p := range []struct {
		on   bool
		name string
	}{{a.promptNone, "none"}, {a.promptLogin, "login"}, {a.promptConsent, "consent"}} {
		if p.on {
			prompt = append(prompt, p.name)
		}
	}
	set("prompt", strings.Join(prompt, " "))
	if a.maxAge >= 0 {
		v.Set("max_age", strconv.FormatInt(a.maxAge, 10))
	}
	return v
}

// loggedIn records that the user has just logged in, which satisfies
// prompt=login and max_age.
func (a *authRequest) loggedIn() {
	a.promptLogin, a.maxAge = false, -1
}

// proceed takes a valid request as far as it can go: the login page when
// the user must log in, the consent page when the client needs scopes the
// user has not granted, else a code for the client. consented is true when
// the user has just approved this request.
func (s *Server) proceed(w http.ResponseWriter, r *http.Request, req *authRequest, sess *browserSession, u *store.User, consented bool) error {
	if u == nil || req.promptLogin || req.maxAge >= 0 && s.cfg.Now().Unix()-sess.AuthTime >= req.maxAge {
		if req.promptNone {
			return &redirectError{req, oauth.Errorf(oauth.ErrLoginRequired, "the user is not logged in")}
		}
		return s.showLogin(w, r, req, "", "")
	}
	if !consented {
		need, err := s.needsConsent(r.Context(), req, u)
		if err != nil {
			return err
		}
		if need && req.promptNone {
			return &redirectError{req, oauth.Errorf(oauth.ErrConsentRequired, "the user has not granted these scopes")}
		}
		if need {
			return s.showConsent(w, r, req, sess, u)
		}
	}
	return s.issueCode(w, r, req, sess, u)
}

// needsConsent reports whether the user must approve the request: when
// asked to, when the user has never approved the client (even for no
// scopes: the client learns who the user is), or when the request has a
// scope the user has not granted the client.
func (s *Server) needsConsent(ctx context.Context, req *authRequest, u *store.User) (bool, error) {
	if req.promptConsent {
		return true, nil
	}
	granted, err := s.cfg.Store.GetConsent(ctx, u.ID, req.client.ID)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, s.internal(ctx, "get consent", err)
	}
	for _, sc := range req.scopes {
		if !slices.Contains(granted, sc) {
			return true, nil
		}
	}
	return false, nil
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, req *authRequest, problem, username string) error {
	sealed, err := s.sealRequest(req.params())
	if err != nil {
		return s.internal(r.Context(), "seal request", err)
	}
	renderPage(w, http.StatusOK, loginPage, loginData{
		Title: "Sign in", Error: problem, ClientID: req.client.ID, Username: username,
		Action: s.prefix + pathLogin, CSRF: s.csrfToken(w, r, formLogin, ""), Request: sealed,
	}, req.redirectURI)
	return nil
}

func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, req *authRequest, sess *browserSession, u *store.User) error {
	sealed, err := s.sealRequest(req.params())
	if err != nil {
		return s.internal(r.Context(), "seal request", err)
	}
	texts := make([]string, len(req.scopes))
	for i, sc := range req.scopes {
		texts[i] = scopeText(sc)
	}
	renderPage(w, http.StatusOK, consentPage, consentData{
		Title: "Allow access?", Username: u.Username, ClientID: req.client.ID, Scopes: texts,
		Action: s.prefix + pathConsent, CSRF: s.csrfToken(w, r, formConsent, sess.ID), Request: sealed,
	}, req.redirectURI)
	return nil
}

// issueCode stores a new authorization code for the request and sends it to
// the client (RFC 6749 §4.1.2).
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, req *authRequest, sess *browserSession, u *store.User) error {
	ctx := r.Context()
	code := keyring.RandomToken(codeBytes)
	now := s.cfg.Now().UTC()
	ac := store.AuthCode{
		Hash: s.codeHasher.Hash(code), ClientID: req.client.ID, UserID: u.ID, RedirectURI: req.redirectURI,
		Scopes: req.scopes, Nonce: req.nonce, CodeChallenge: req.codeChallenge,
		AuthTime: sess.authTime(), CreatedAt: now, ExpiresAt: now.Add(authCodeTTL),
	}
	if ac.CodeChallenge != "" {
		ac.CodeChallengeMethod = pkceS256
	}
	if err := s.cfg.Store.CreateAuthCode(ctx, ac); err != nil {
		return s.internal(ctx, "store authorization code", err)
	}
	s.audit(ctx, "authorization code issued", "client_id", req.client.ID, "sub", u.ID, "login", sess.ID)
	s.redirectToClient(w, r, req, url.Values{"code": {code}})
	return nil
}

// redirectToClient sends the browser to the request's redirect URI with v,
// the state and the issuer (RFC 9207) added to its query.
func (s *Server) redirectToClient(w http.ResponseWriter, r *http.Request, req *authRequest, v url.Values) {
	if req.state != "" {
		v.Set("state", req.state)
	}
	v.Set("iss", s.cfg.Issuer)
	u, err := url.Parse(req.redirectURI)
	if err != nil { // registered before redirect URIs were checked
		renderPage(w, http.StatusBadRequest, errorPage, errorData{Title: "Cannot continue",
			Message: "The redirect URI registered for this application is malformed."}, "")
		return
	}
	if u.RawQuery == "" {
		u.RawQuery = v.Encode()
	} else {
		u.RawQuery += "&" + v.Encode()
	}
	setPageHeaders(w.Header())
	w.Header().Set("Location", u.String())
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	w.WriteHeader(status)
}

// single returns the value of a parameter; ok is false when it is repeated.
func single(p url.Values, name string) (string, bool) {
	v := p[name]
	if len(v) > 1 {
		return "", false
	}
	return p.Get(name), true
}
