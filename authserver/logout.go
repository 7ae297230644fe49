package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// OpenID Connect RP-Initiated Logout 1.0: a relying party sends the browser
// to the end-session endpoint to end the user's login at this server, and
// may name where the browser goes afterwards.
//
// The browser session ends for good, not only in this browser: its ID is
// recorded as ended (a marker in the store, like the revocation markers of
// revocation.go, kept until the session would have expired), so a copy of
// the cookie no longer works either. The refresh-token family named by the
// id_token_hint's sid — the session of the RP that asked — is revoked with
// it when the hint is the logged-in user's. Tokens that other clients got
// through the same login live on: the server does not link them to the
// browser session, and their clients end them with RFC 7009 revocation.

const (
	pathLogout        = "/oauth2/logout"
	pathLogoutConfirm = "/oauth2/logout/confirm"
)

// formLogout is the CSRF form name of the logout confirmation, and
// sealLogoutName binds the request it carries, so that a sealed
// authorization request cannot stand in for it.
const (
	formLogout     = "logout"
	sealLogoutName = "logout-request"
)

// loggedOut is why the family named by an id_token_hint is revoked.
var loggedOut = revocation{secevent.InitiatedByUser, "RP-initiated logout"}

// logoutRequest is a validated end-session request.
type logoutRequest struct {
	params      url.Values    // as received, sealed into the confirmation form
	client      *store.Client // from client_id or the hint's aud; nil if neither
	redirectURI string        // a registered post_logout_redirect_uri, or ""
	state       string
	hint        *jose.Claims // the verified id_token_hint, or nil
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	s.writeAuthorize(w, r, s.logout(w, r))
}

func (s *Server) handleLogoutConfirm(w http.ResponseWriter, r *http.Request) {
	s.writeAuthorize(w, r, s.logoutConfirm(w, r))
}

// logout answers an end-session request (RP-Initiated Logout 1.0 §2): it
// ends the session at once when the id_token_hint is the logged-in user's,
// and otherwise asks the user to confirm.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	params, err := s.pageParams(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	req, err := s.parseLogoutRequest(ctx, params)
	if err != nil {
		return err
	}
	if r.Method == http.MethodPost && s.cookieValue(r, sessionCookie) == "" {
		// A form posted from the RP's site carries no SameSite=Lax cookie;
		// the top-level GET it is sent on to does.
		setPageHeaders(w.Header())
		w.Header().Set("Location", s.cfg.Issuer+pathLogout+"?"+params.Encode())
		w.WriteHeader(http.StatusSeeOther)
		return nil
	}
	sess, u, err := s.currentUser(ctx, r)
	if err != nil {
		return err
	}
	if sess == nil {
		return s.signedOut(w, r, req) // nothing to end
	}
	if req.hintFor(sess) {
		return s.endBrowserSession(w, r, req, sess)
	}
	sealed, err := s.seal(keyring.PurposeAuthRequest, sealLogoutName, sealedRequest{
		Params: params, Expires: s.cfg.Now().Add(requestFormTTL).Unix()})
	if err != nil {
		return s.internal(ctx, "seal logout request", err)
	}
	data := logoutData{Title: "Sign out?", Username: u.Username, Action: s.prefix + pathLogoutConfirm,
		CSRF: s.csrfToken(w, r, formLogout, sess.ID), Request: sealed}
	if req.client != nil {
		data.ClientID = req.client.ID
	}
	target := req.redirectURI
	if target == "" { // the form posts here only: form-action is the issuer's origin
		target = s.cfg.Issuer
	}
	renderPage(w, http.StatusOK, logoutPage, data, target)
	return nil
}

// logoutConfirm takes the user's answer on the confirmation page.
func (s *Server) logoutConfirm(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	form, err := s.readPageForm(w, r)
	if err != nil {
		return err
	}
	sess, _, err := s.currentUser(ctx, r)
	if err != nil {
		return err
	}
	if sess == nil { // ended meanwhile, in another tab or by expiry
		renderPage(w, http.StatusOK, messagePage, errorData{Title: "Signed out",
			Message: "You are signed out."}, "")
		return nil
	}
	if !s.checkCSRF(r, formLogout, sess.ID, form.Get("csrf_token")) {
		return errForgedForm
	}
	var sr sealedRequest
	if s.open(keyring.PurposeAuthRequest, sealLogoutName, form.Get("request"), &sr) != nil || s.cfg.Now().Unix() >= sr.Expires {
		return errExpiredForm
	}
	req, err := s.parseLogoutRequest(ctx, sr.Params) // the client may have changed since
	if err != nil {
		return err
	}
	switch form.Get("action") {
	case "logout":
		return s.endBrowserSession(w, r, req, sess)
	case "stay":
		renderPage(w, http.StatusOK, messagePage, errorData{Title: "Still signed in",
			Message: "You are still signed in. You can close this page."}, "")
		return nil
	default:
		return &pageError{http.StatusBadRequest, "Choose Sign out or Stay signed in."}
	}
}

// parseLogoutRequest validates the parameters of RP-Initiated Logout 1.0
// §2. Every error is a *pageError: nothing goes back to a URI that is not
// known to be the client's.
func (s *Server) parseLogoutRequest(ctx context.Context, p url.Values) (*logoutRequest, error) {
	for _, v := range p {
		if len(v) > 1 {
			return nil, &pageError{http.StatusBadRequest, "The logout request repeats a parameter."}
		}
	}
	req := &logoutRequest{params: p, state: p.Get("state")}
	if len(req.state) > maxEchoLen {
		return nil, &pageError{http.StatusBadRequest, "The logout request is malformed."}
	}
	clientID := p.Get("client_id")
	if raw := p.Get("id_token_hint"); raw != "" {
		hint, err := s.verifyIDTokenHint(ctx, raw, clientID)
		if err != nil {
			return nil, err
		}
		req.hint, clientID = hint, hint.Audience[0]
	}
	if clientID != "" {
		c, err := s.cfg.Store.GetClient(ctx, clientID)
		if errors.Is(err, store.ErrNotFound) || err == nil && c.Disabled {
			return nil, &pageError{http.StatusBadRequest, "The application that sent you here is not registered."}
		}
		if err != nil {
			return nil, s.internal(ctx, "get client", err)
		}
		req.client = &c
	}
	if uri := p.Get("post_logout_redirect_uri"); uri != "" {
		if req.client == nil {
			return nil, &pageError{http.StatusBadRequest, "The logout request names a return address but no application."}
		}
		if !slices.Contains(req.client.PostLogoutRedirectURIs, uri) { // exact match
			return nil, &pageError{http.StatusBadRequest, "The return address is not registered for this application."}
		}
		req.redirectURI = uri
	}
	return req, nil
}

// hintFor reports whether the request's id_token_hint was issued in the
// browser session sess: same user and same login (auth_time), so an old ID
// token of the same user from an earlier login still asks for confirmation.
func (req *logoutRequest) hintFor(sess *browserSession) bool {
	h := req.hint
	return h != nil && h.Subject == sess.UserID && h.AuthTime != nil && h.AuthTime.Time().Unix() == sess.AuthTime
}

// verifyIDTokenHint verifies an ID token of this server given as a hint:
// our issuer and keys, typ JWT (not an access token), one audience, which
// must be clientID if that is set. An expired token is a valid hint
// (RP-Initiated Logout 1.0 §2).
func (s *Server) verifyIDTokenHint(ctx context.Context, raw, clientID string) (*jose.Claims, error) {
	invalid := &pageError{http.StatusBadRequest, "The logout request carries an ID token that is not valid here."}
	aud := unverifiedAudience(raw)
	if len(aud) != 1 || clientID != "" && aud[0] != clientID {
		return nil, invalid
	}
	c, err := jose.Verify(ctx, raw, s.keys.published(), jose.Expect{
		Issuer: s.cfg.Issuer, Audience: aud, Types: []string{jose.TypeJWT},
		Now: s.cfg.Now(), SkipExpiryCheck: true,
	})
	if errors.Is(err, jose.ErrInvalid) || err == nil && (c.Subject == "" || len(c.Audience) != 1) {
		return nil, invalid
	}
	if err != nil {
		return nil, s.internal(ctx, "verify id_token_hint", err)
	}
	return c, nil
}

// endBrowserSession ends sess: the cookie is cleared, the session's ID is
// recorded as ended, and the refresh-token family the hint names is revoked
// when the hint is the session user's. Then the browser goes to the
// request's post_logout_redirect_uri, or sees that it is signed out.
func (s *Server) endBrowserSession(w http.ResponseWriter, r *http.Request, req *logoutRequest, sess *browserSession) error {
	ctx := r.Context()
	now := s.cfg.Now().UTC()
	s.clearCookie(w, sessionCookie)
	err := s.putMarker(ctx, s.revocationHasher.Hash(endedLoginMarker(sess.ID)),
		time.Unix(sess.Expires, 0), "", sess.UserID, now)
	if err != nil {
		return s.internal(ctx, "record browser session ended", err)
	}
	clientID, family := "", ""
	if req.client != nil {
		clientID = req.client.ID
	}
	if req.hintFor(sess) && req.hint.SessionID != "" && req.client != nil {
		family = req.hint.SessionID
		rt := store.RefreshToken{FamilyID: family, ClientID: req.client.ID, UserID: sess.UserID}
		if err := s.endSession(ctx, *req.client, rt, loggedOut); err != nil {
			return s.internal(ctx, "end session at logout", err)
		}
	}
	s.audit(ctx, "logout", "login", sess.ID, "sub", sess.UserID, "client_id", clientID, "sid", family)
	return s.signedOut(w, r, req)
}

// signedOut redirects to the request's post_logout_redirect_uri with its
// state, or shows that the user is signed out.
func (s *Server) signedOut(w http.ResponseWriter, r *http.Request, req *logoutRequest) error {
	if req.redirectURI == "" {
		renderPage(w, http.StatusOK, messagePage, errorData{Title: "Signed out",
			Message: "You are signed out. You can close this page."}, "")
		return nil
	}
	u, err := url.Parse(req.redirectURI)
	if err != nil { // registered before post-logout redirect URIs were checked
		return &pageError{http.StatusBadRequest, "The return address registered for this application is malformed."}
	}
	if req.state != "" { // the registered query is kept as it is
		v := url.Values{"state": {req.state}}.Encode()
		if u.RawQuery == "" {
			u.RawQuery = v
		} else {
			u.RawQuery += "&" + v
		}
	}
	setPageHeaders(w.Header())
	w.Header().Set("Location", u.String())
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	w.WriteHeader(status)
	return nil
}

// endedLoginMarker names the marker of an ended browser session.
func endedLoginMarker(id string) string { return "login:" + id }

// loginEnded reports whether the browser session with that ID was ended by
// logout.
func (s *Server) loginEnded(ctx context.Context, id string) (bool, error) {
	_, err := s.cfg.Store.GetAccessToken(ctx, s.revocationHasher.Hash(endedLoginMarker(id)))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
