package authserver

import (
	"errors"
	"net/http"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// The login and consent forms post here with their CSRF token and the
// sealed authorization request. Each handler checks the token first, then
// validates the request again from scratch (the client may have changed
// since the form was shown), and goes on where authorize left off.

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	s.writeAuthorize(w, r, s.login(w, r))
}

func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	s.writeAuthorize(w, r, s.consent(w, r))
}

// login checks the user's password and starts a browser session.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	form, err := s.readPageForm(w, r)
	if err != nil {
		return err
	}
	if !s.checkCSRF(r, formLogin, "", form.Get("csrf_token")) {
		return errForgedForm
	}
	req, err := s.openAuthRequest(r, form.Get("request"))
	if err != nil {
		return err
	}
	if form.Get("action") == "cancel" {
		return &redirectError{req, oauth.Errorf(oauth.ErrAccessDenied, "the user cancelled the login")}
	}
	username, pw := form.Get("username"), form.Get("password")
	if username == "" || pw == "" {
		return s.showLogin(w, r, req, "Enter your username and password.", username)
	}
	if len(username) > maxUsernameLength {
		return s.showLogin(w, r, req, "Wrong username or password.", "")
	}
	keys := loginKeys{user: "user:" + username, addr: addrKey(r.RemoteAddr)}
	u, err := s.authenticateUser(ctx, username, pw, req.client.ID, r.RemoteAddr, keys)
	if errors.Is(err, badLogin) {
		return s.showLogin(w, r, req, "Wrong username or password.", username)
	}
	if oe, ok := errors.AsType[*oauth.Error](err); ok && oe.Code == oauth.ErrInvalidGrant {
		return s.showLogin(w, r, req, "Too many failed logins. Wait a moment and try again.", username)
	}
	if err != nil {
		return err
	}
	sess, err := s.startBrowserSession(w, u)
	if err != nil {
		return s.internal(ctx, "start browser session", err)
	}
	req.loggedIn()
	return s.proceed(w, r, req, sess, &u, false)
}

// consent records the user's answer on the consent page. Granted scopes are
// remembered per user and client, so the page is not shown again for them.
func (s *Server) consent(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	form, err := s.readPageForm(w, r)
	if err != nil {
		return err
	}
	sess, u, err := s.currentUser(ctx, r)
	if err != nil {
		return err
	}
	if sess == nil || !s.checkCSRF(r, formConsent, sess.ID, form.Get("csrf_token")) {
		return errForgedForm // the token is bound to the session it was shown in
	}
	req, err := s.openAuthRequest(r, form.Get("request"))
	if err != nil {
		return err
	}
	switch form.Get("action") {
	case "allow":
	case "deny":
		s.audit(ctx, "consent denied", "client_id", req.client.ID, "sub", u.ID)
		return &redirectError{req, oauth.Errorf(oauth.ErrAccessDenied, "the user denied access")}
	default:
		return &pageError{http.StatusBadRequest, "Choose Allow or Deny."}
	}
	granted, err := s.cfg.Store.GetConsent(ctx, u.ID, req.client.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return s.internal(ctx, "get consent", err)
	}
	granted = append(granted, req.scopes...)
	slices.Sort(granted)
	granted = slices.Compact(granted)
	if err := s.cfg.Store.PutConsent(ctx, u.ID, req.client.ID, granted, s.cfg.Now().UTC()); err != nil {
		return s.internal(ctx, "put consent", err)
	}
	s.audit(ctx, "consent granted", "client_id", req.client.ID, "sub", u.ID, "scope", granted)
	return s.proceed(w, r, req, sess, u, true)
}

// openAuthRequest opens and validates the request a form carried.
func (s *Server) openAuthRequest(r *http.Request, sealed string) (*authRequest, error) {
	params, ok := s.openRequest(sealed)
	if !ok {
		return nil, errExpiredForm
	}
	return s.parseAuthRequest(r.Context(), params)
}
