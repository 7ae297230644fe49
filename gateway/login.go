package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

//go:embed templates
var templateFS embed.FS

var (
	pageStyle = mustRead("templates/page.css")
	// pageCSP allows the pages nothing but their own inline style (by its
	// hash) and posting their forms to the gateway.
	pageCSP = "default-src 'none'; style-src '" + cspHash(pageStyle) + "'; form-action 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'"
	loginPage  = template.Must(template.ParseFS(templateFS, "templates/login.html"))
	logoutPage = template.Must(template.ParseFS(templateFS, "templates/logout.html"))
)

func mustRead(name string) string {
	b, err := templateFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// Limits of the login form.
const (
	maxLoginBody   = 16 << 10
	maxUsernameLen = 256
	maxPasswordLen = 1024
	maxNextLen     = 2048
)

// serve answers the gateway's own session endpoints; it returns false for
// every other path.
func (s *sessions) serve(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case s.sc.LoginPath:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			s.loginForm(w, r, r.URL.Query().Get("next"), "", "", http.StatusOK)
		case http.MethodPost:
			s.login(w, r)
		default:
			methodNotAllowed(w, "GET, HEAD, POST")
		}
	case s.sc.LogoutPath:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			s.logoutForm(w, r)
		case http.MethodPost:
			s.logout(w, r)
		default:
			methodNotAllowed(w, "GET, HEAD, POST")
		}
	default:
		return false
	}
	return true
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "method not allowed", Status: http.StatusMethodNotAllowed})
}

// pageHeaders are the security headers of the gateway's HTML pages.
func pageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

type loginData struct {
	Style    template.CSS
	Action   string
	CSRF     string
	Next     string
	Username string
	Error    string
}

// loginForm renders the login form, with an error message when errMsg is
// set. It sets the pre-session cookie if the request has none.
func (s *sessions) loginForm(w http.ResponseWriter, r *http.Request, next, username, errMsg string, status int) {
	n := s.names(r)
	csrf, set := s.csrfCookie(r, n)
	if set != nil {
		http.SetCookie(w, set)
	}
	s.render(w, loginPage, status, loginData{Style: template.CSS(pageStyle), Action: s.sc.LoginPath,
		CSRF: s.csrf.token(csrf), Next: s.safeNext(next), Username: username, Error: errMsg})
}

func (s *sessions) logoutForm(w http.ResponseWriter, r *http.Request) {
	n := s.names(r)
	csrf, set := s.csrfCookie(r, n)
	if set != nil {
		http.SetCookie(w, set)
	}
	s.render(w, logoutPage, http.StatusOK, loginData{Style: template.CSS(pageStyle), Action: s.sc.LogoutPath,
		CSRF: s.csrf.token(csrf)})
}

func (s *sessions) render(w http.ResponseWriter, t *template.Template, status int, data loginData) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		s.cfg.Logger.Error("render page", "err", err)
		writeError(w, &oauth.Error{Code: oauth.ErrServerError, Description: "internal error"})
		return
	}
	pageHeaders(w.Header())
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// loginRequest is a submitted login, from the form or from JSON.
type loginRequest struct {
	Username  string `json:"username"`
	Password  string `json:"password"`
	Next      string `json:"next"`
	CSRFToken string `json:"csrf_token"`
	json      bool   // the client wants JSON back
}

// login takes the login form or its JSON equivalent, makes a password grant
// with the gateway's client (RFC 6749 §4.3) and sets the session cookies.
func (s *sessions) login(w http.ResponseWriter, r *http.Request) {
	req, err := readLogin(w, r)
	if err != nil {
		s.loginFailed(w, r, req, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: err.Error()}, "The form could not be read. Please try again.")
		return
	}
	n := s.names(r)
	if !s.formAllowed(r, n, req.CSRFToken) {
		s.cfg.Logger.InfoContext(r.Context(), "login refused", "reason", "csrf", "origin", r.Header.Get("Origin"),
			"sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		s.loginFailed(w, r, req, &oauth.Error{Code: oauth.ErrAccessDenied, Description: "cross-site login refused", Status: http.StatusForbidden},
			"This form has expired. Please sign in again.")
		return
	}
	if req.Username == "" || req.Password == "" || len(req.Username) > maxUsernameLen || len(req.Password) > maxPasswordLen {
		s.loginFailed(w, r, req, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "username and password are required"},
			"Enter your username and password.")
		return
	}
	resp, err := s.token(r.Context(), url.Values{"grant_type": {oauth.GrantPassword}, "username": {req.Username}, "password": {req.Password}})
	if _, refused := errors.AsType[*oauth.Error](err); refused && !errors.Is(err, errUnavailable) {
		s.loginFailed(w, r, req, &oauth.Error{Code: oauth.ErrInvalidGrant, Description: "invalid username or password"},
			"Wrong username or password.")
		return
	}
	if err == nil {
		_, err = s.verify.Verify(r.Context(), resp.AccessToken)
	}
	if err != nil {
		s.cfg.Logger.WarnContext(r.Context(), "login unavailable", "err", err)
		s.loginFailed(w, r, req, &oauth.Error{Code: oauth.ErrTemporarilyUnavailable, Description: "sign-in is unavailable, retry later"},
			"Sign-in is unavailable right now. Please try again in a moment.")
		return
	}
	for _, c := range s.tokenCookies(n, resp.AccessToken, resp.RefreshToken) {
		if c.Value == "" {
			continue // a server that issues no refresh token: the session ends with the access token
		}
		if len(c.String()) > maxCookieValue {
			s.cfg.Logger.WarnContext(r.Context(), "session cookie exceeds what browsers keep", "cookie", c.Name, "bytes", len(c.String()))
		}
		http.SetCookie(w, c)
	}
	// A fresh pre-session cookie for the next form.
	http.SetCookie(w, &http.Cookie{Name: n.csrf, Path: "/", MaxAge: -1, HttpOnly: true, Secure: n.secure, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Cache-Control", "no-store")
	if req.json {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, s.safeNext(req.Next), http.StatusSeeOther)
}

// loginFailed answers a failed login: a JSON error, or the form again with
// a message.
func (s *sessions) loginFailed(w http.ResponseWriter, r *http.Request, req *loginRequest, e *oauth.Error, msg string) {
	if req.json {
		writeError(w, e)
		return
	}
	status := http.StatusOK
	switch e.HTTPStatus() {
	case http.StatusForbidden, http.StatusServiceUnavailable:
		status = e.HTTPStatus()
	case http.StatusBadRequest:
		if e.Code == oauth.ErrInvalidRequest {
			status = http.StatusBadRequest
		}
	}
	s.loginForm(w, r, req.Next, req.Username, msg, status)
}

// readLogin reads a login from a form (application/x-www-form-urlencoded)
// or from JSON. The answer is JSON when the client accepts JSON or sent it.
func readLogin(w http.ResponseWriter, r *http.Request) (*loginRequest, error) {
	req := &loginRequest{json: wantsJSON(r)}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return req, errors.New("unsupported content type")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	switch mt {
	case "application/json":
		req.json = true
		dec := json.NewDecoder(r.Body)
		var v loginRequest
		if err := dec.Decode(&v); err != nil {
			return req, errors.New("malformed JSON body")
		}
		v.json = true
		*req = v
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return req, errors.New("malformed form body")
		}
		f := r.PostForm
		for _, k := range []string{"username", "password", "next", "csrf_token"} {
			if len(f[k]) > 1 {
				return req, fmt.Errorf("parameter %s repeated", k)
			}
		}
		req.Username, req.Password, req.Next, req.CSRFToken = f.Get("username"), f.Get("password"), f.Get("next"), f.Get("csrf_token")
	default:
		return req, errors.New("unsupported content type")
	}
	if strings.ContainsRune(req.Username, 0) || strings.ContainsRune(req.Password, 0) {
		return req, errors.New("invalid characters")
	}
	return req, nil
}

// wantsJSON reports whether the client asks for JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

// safeNext returns next when it is a path on this origin, and "/"
// otherwise, so that the login cannot send the browser elsewhere. A browser
// resolves "//host", "/\host" and, after dropping tabs and newlines,
// "/\t/host" to another host; it also reads a backslash as a slash. Any
// backslash, control character, scheme or authority is refused, and so is
// the login path itself.
func (s *sessions) safeNext(next string) string {
	if !safePath(next) {
		return "/"
	}
	if p, _, _ := strings.Cut(next, "?"); p == s.sc.LoginPath || p == s.sc.LogoutPath {
		return "/"
	}
	return next
}

// safePath reports whether p is an absolute path (with an optional query)
// that every browser resolves on the current origin.
func safePath(p string) bool {
	if len(p) == 0 || len(p) > maxNextLen || p[0] != '/' {
		return false
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x21 || c == 0x7f || c == '\\' || c == '#' {
			return false
		}
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == "" && strings.HasPrefix(u.Path, "/")
}

// logout revokes the session's refresh token at the authorization server
// (RFC 7009) and clears the cookies. The cookies are cleared even when
// revocation fails: the browser's session ends either way.
func (s *sessions) logout(w http.ResponseWriter, r *http.Request) {
	n := s.names(r)
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	token := ""
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" && r.ParseForm() == nil {
		token = r.PostForm.Get("csrf_token")
	}
	if !s.formAllowed(r, n, token) {
		s.cfg.Logger.InfoContext(r.Context(), "logout refused", "reason", "csrf", "origin", r.Header.Get("Origin"),
			"sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		writeError(w, &oauth.Error{Code: oauth.ErrAccessDenied, Description: "cross-site logout refused", Status: http.StatusForbidden})
		return
	}
	if refresh, ok := readCookie(r.Header, n.refresh); ok {
		s.forget(refresh)
		if err := s.revoke(r.Context(), refresh); err != nil {
			s.cfg.Logger.WarnContext(r.Context(), "logout: refresh token not revoked", "err", err)
		}
	}
	for _, c := range s.clearCookies(n) {
		http.SetCookie(w, c)
	}
	w.Header().Set("Cache-Control", "no-store")
	if wantsJSON(r) || r.Header.Get("Sec-Fetch-Mode") != "" && r.Header.Get("Sec-Fetch-Mode") != "navigate" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, s.sc.LoginPath, http.StatusSeeOther)
}

// errNoRevocation: the authorization server announces no revocation
// endpoint.
var errNoRevocation = errors.New("the authorization server announces no revocation_endpoint")

// revoke revokes a refresh token (RFC 7009 §2.1), authenticating as the
// gateway's client the way the token endpoint is called.
func (s *sessions) revoke(ctx context.Context, refresh string) error {
	endpoint, err := s.revocationEndpoint(ctx)
	if err != nil {
		return err
	}
	body := url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(s.cfg.ClientID), url.QueryEscape(s.cfg.ClientSecret))
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK { // RFC 7009 §2.2: 200 whether or not the token was valid
		return fmt.Errorf("revoke: HTTP %d", resp.StatusCode)
	}
	return nil
}

// revocationEndpoint returns Config.RevocationURL, or the revocation_endpoint
// of the issuer's metadata. Only a found endpoint is kept, so that a server
// that starts announcing one is used from the next logout on.
func (s *sessions) revocationEndpoint(ctx context.Context) (string, error) {
	if s.cfg.RevocationURL != "" {
		return s.cfg.RevocationURL, nil
	}
	s.revocationMu.Lock()
	defer s.revocationMu.Unlock()
	if s.revocationURL != "" {
		return s.revocationURL, nil
	}
	meta, err := discover(ctx, s.cfg.HTTPClient, s.cfg.Issuer)
	if err != nil {
		return "", err
	}
	if meta.RevocationEndpoint == "" {
		return "", errNoRevocation
	}
	s.revocationURL = meta.RevocationEndpoint
	return s.revocationURL, nil
}
