package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// sessionCookie holds the browser session: a login at the authorization
// server's own pages, so that the next authorization request of the same
// browser skips the login form. It is sealed (AES-GCM under a key of the
// keyring), so it cannot be read or forged, and holds no secret of the user.
const sessionCookie = "gatehouse-session"

// browserSession is the content of the session cookie.
type browserSession struct {
	ID       string `json:"id"`  // random; names the login in audit logs
	UserID   string `json:"sub"` // the user's subject
	AuthTime int64  `json:"auth_time"`
	Expires  int64  `json:"exp"`
	// Started is the login's instant in Unix nanoseconds, compared with
	// the user's TokensNotBefore: a password change, disabling or "revoke
	// all sessions" ends the browser session too. Zero in cookies from
	// before it existed, which are judged by AuthTime.
	Started int64 `json:"t,omitempty"`
}

func (b *browserSession) authTime() time.Time { return time.Unix(b.AuthTime, 0).UTC() }

// started is when the browser logged in, as precisely as the cookie says.
func (b *browserSession) started() time.Time {
	if b.Started != 0 {
		return time.Unix(0, b.Started).UTC()
	}
	return b.authTime()
}

// startBrowserSession sets the session cookie for u, who has just logged in.
func (s *Server) startBrowserSession(w http.ResponseWriter, u store.User) (*browserSession, error) {
	now := s.cfg.Now()
	b := &browserSession{ID: keyring.RandomToken(16), UserID: u.ID, AuthTime: now.Unix(),
		Expires: now.Add(s.cfg.SessionTTL).Unix(), Started: now.UnixNano()}
	v, err := s.seal(keyring.PurposeBrowserSession, sessionCookie, b)
	if err != nil {
		return nil, err
	}
	s.setCookie(w, sessionCookie, v)
	return b, nil
}

// currentUser returns the browser's session and its user, or nils when the
// browser has no valid session, the session was ended by logout (see
// logout.go), the user can no longer log in, or the user's tokens were ended
// since the login (password changed, disabled, roles changed, all sessions
// revoked: see issuedForCurrentUser).
func (s *Server) currentUser(ctx context.Context, r *http.Request) (*browserSession, *store.User, error) {
	v := s.cookieValue(r, sessionCookie)
	if v == "" {
		return nil, nil, nil
	}
	var b browserSession
	if s.open(keyring.PurposeBrowserSession, sessionCookie, v, &b) != nil || s.cfg.Now().Unix() >= b.Expires {
		return nil, nil, nil
	}
	switch ended, err := s.loginEnded(ctx, b.ID); {
	case err != nil:
		return nil, nil, s.internal(ctx, "get ended browser session", err)
	case ended: // by logout; this is a copy of the cookie, or a stale one
		return nil, nil, nil
	}
	u, err := s.cfg.Store.GetUserByID(ctx, b.UserID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !issuedForCurrentUser(u, b.started()) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, s.internal(ctx, "get user", err)
	}
	return &b, &u, nil
}

// sealedRequest is an authorization request carried through the login and
// consent forms, sealed so that it cannot be changed on the way.
type sealedRequest struct {
	Params  url.Values `json:"p"`
	Expires int64      `json:"exp"`
}

// requestFormTTL is how long a login or consent form may stay open.
const requestFormTTL = 30 * time.Minute

func (s *Server) sealRequest(params url.Values) (string, error) {
	return s.seal(keyring.PurposeAuthRequest, "request", sealedRequest{
		Params: params, Expires: s.cfg.Now().Add(requestFormTTL).Unix()})
}

// openRequest returns the parameters sealRequest sealed; a false ok means
// the value is forged, corrupt or expired.
func (s *Server) openRequest(v string) (url.Values, bool) {
	var sr sealedRequest
	if s.open(keyring.PurposeAuthRequest, "request", v, &sr) != nil || s.cfg.Now().Unix() >= sr.Expires {
		return nil, false
	}
	return sr.Params, true
}

// seal encodes v as JSON and seals it for purpose, bound to name.
func (s *Server) seal(purpose, name string, v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sealed, err := s.cfg.Keyring.Seal(purpose, data, []byte(name))
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// open reverses seal.
func (s *Server) open(purpose, name, value string, v any) error {
	sealed, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return err
	}
	data, err := s.cfg.Keyring.Open(purpose, sealed, []byte(name))
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
