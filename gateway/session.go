package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// SessionConfig configures browser sessions (DESIGN.md flow 3): the login
// form, the session cookies, transparent refresh and logout. The zero value
// leaves sessions off.
type SessionConfig struct {
	// Enabled turns sessions on: the gateway serves LoginPath and LogoutPath
	// itself (before any route), and requests without an Authorization
	// header are authenticated by the session cookies. It needs ClientID
	// and ClientSecret.
	Enabled bool
	// LoginPath serves the login form (GET) and takes it (POST). If empty,
	// "/login".
	LoginPath string
	// LogoutPath serves a sign-out form (GET) and ends the session (POST).
	// If empty, "/logout".
	LogoutPath string
	// SameSite of the session cookies: http.SameSiteLaxMode or
	// http.SameSiteStrictMode. If zero or http.SameSiteDefaultMode, Lax, so
	// that a link from another site lands signed in; None is refused.
	SameSite http.SameSite
	// PublicURL is the gateway's origin as browsers see it, such as
	// "https://app.example.com". A cookie-authenticated unsafe request
	// (POST, PUT, PATCH, DELETE) must come from it. If empty, the origin is
	// read from each request: its Host, with https when the connection is
	// TLS. Set it behind a proxy that terminates TLS.
	PublicURL string
	// RefreshBefore: an access token that expires within this is refreshed
	// before the request is forwarded, so that it does not expire on its way.
	// If zero, 10s.
	RefreshBefore time.Duration
	// ReuseWindow is how long the result of a refresh is kept for requests
	// that still carry the refresh token it replaced (sent before the
	// browser received the new cookies), so that they reuse it instead of
	// presenting a rotated token to the authorization server. Keep it no
	// longer than the server's own grace window. If zero, 10s.
	ReuseWindow time.Duration
	// RetryBodyBytes bounds the request bodies buffered so that an
	// idempotent request can be sent again after the upstream refused its
	// token (RFC 6749 §1.5 step F) — for cookie sessions, and for Basic
	// credentials also when sessions are off. A larger body is streamed and
	// not retried. If zero, 64 KiB; negative: only requests without a body
	// are retried.
	RetryBodyBytes int64
	// InsecureDevCookies names the cookies without the __Host- prefix and
	// without Secure, for development over plain http with browsers that
	// refuse Secure cookies from http://localhost (Safari, most non-browser
	// cookie jars). It takes effect only on requests that arrive without TLS
	// from a loopback address for a loopback host; every other request uses
	// the __Host- cookies. Chromium needs no such flag: it treats
	// http://localhost and http://127.0.0.1 as secure and keeps __Host-
	// cookies they set. See docs/sessions.md.
	InsecureDevCookies bool
	// CacheSize bounds the refresh results kept for ReuseWindow. If zero,
	// 10000.
	CacheSize int
}

func (c *SessionConfig) setDefaults(cfg *Config) error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("session: needs client_id and client_secret"))
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.LoginPath, "/login")
	def(&c.LogoutPath, "/logout")
	for _, p := range []string{c.LoginPath, c.LogoutPath} {
		if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "?#\\ ") {
			errs = append(errs, fmt.Errorf("session: path %q must be an absolute path", p))
		}
	}
	if c.LoginPath == c.LogoutPath {
		errs = append(errs, errors.New("session: login_path and logout_path must differ"))
	}
	switch c.SameSite {
	case 0, http.SameSiteDefaultMode:
		c.SameSite = http.SameSiteLaxMode
	case http.SameSiteLaxMode, http.SameSiteStrictMode:
	default:
		errs = append(errs, errors.New("session: same_site must be lax or strict"))
	}
	if c.PublicURL != "" {
		if _, err := parseOrigin(c.PublicURL); err != nil {
			errs = append(errs, fmt.Errorf("session: public_url: %w", err))
		}
	}
	if c.InsecureDevCookies && c.PublicURL != "" && !isLoopbackHost(mustHost(c.PublicURL)) {
		errs = append(errs, errors.New("session: insecure_dev_cookies is for a loopback public_url only"))
	}
	if c.RefreshBefore == 0 {
		c.RefreshBefore = 10 * time.Second
	}
	if c.ReuseWindow == 0 {
		c.ReuseWindow = 10 * time.Second
	}
	if c.RetryBodyBytes == 0 {
		c.RetryBodyBytes = 64 << 10
	}
	if c.CacheSize == 0 {
		c.CacheSize = 10000
	}
	return errors.Join(errs...)
}

// cookieNames are the names of the session cookies.
type cookieNames struct {
	access, refresh, csrf string
	secure                bool
}

var (
	// hostCookies are bound to the host, sent over secure transport only,
	// and cannot be set by a sibling domain (RFC 6265bis §4.1.3.2).
	hostCookies = cookieNames{access: "__Host-gh_at", refresh: "__Host-gh_rt", csrf: "__Host-gh_csrf", secure: true}
	// devCookies are for SessionConfig.InsecureDevCookies.
	devCookies = cookieNames{access: "gh_at", refresh: "gh_rt", csrf: "gh_csrf"}
)

// sessions is the browser-session part of the gateway. It is safe for
// concurrent use.
type sessions struct {
	cfg    *Config
	sc     *SessionConfig
	verify resource.TokenVerifier
	basic  *basicAuth // its token endpoint and discovery
	origin string     // from PublicURL; "" to read each request's
	csrf   csrfKey

	group   singleflight.Group
	mu      sync.Mutex
	results map[[sha256.Size]byte]*refreshResult

	revocationMu  sync.Mutex
	revocationURL string // from discovery, once found
}

func newSessions(cfg *Config, v resource.TokenVerifier, b *basicAuth) *sessions {
	s := &sessions{cfg: cfg, sc: &cfg.Session, verify: v, basic: b,
		csrf: newCSRFKey(cfg.ClientSecret), results: map[[sha256.Size]byte]*refreshResult{}}
	if cfg.Session.PublicURL != "" {
		s.origin, _ = parseOrigin(cfg.Session.PublicURL) // validated in setDefaults
	}
	return s
}

// names returns the cookie names for r: the __Host- ones, unless
// InsecureDevCookies is set and r is plain http on loopback.
func (s *sessions) names(r *http.Request) cookieNames {
	if s.sc.InsecureDevCookies && r.TLS == nil && isLoopbackHost(hostOnly(r.Host)) && isLoopbackHost(hostOnly(r.RemoteAddr)) {
		return devCookies
	}
	return hostCookies
}

// session is the state of one cookie-authenticated request, carried in its
// context from begin to the upstream transport.
type session struct {
	names   cookieNames
	access  string // the access cookie, then the token forwarded
	refresh string // the refresh cookie, then its successor
	w       *sessionWriter
	// authenticated: the gateway verified access and forwards it.
	authenticated bool
	// refreshed: the tokens were renewed during this request.
	refreshed bool
	// rule admitted the caller; a retry checks the renewed caller against
	// it (retry.go).
	rule Rule
	// retried: the upstream refused the token, and the request was sent
	// again with a renewed one.
	retried bool
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// begin returns w and r unchanged for requests that carry an Authorization
// header or no session cookie. For the others, it wraps w so that renewed
// cookies reach the client, and puts the session in r's context.
func (s *sessions) begin(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request) {
	if _, ok := r.Header["Authorization"]; ok {
		return w, r
	}
	if _, ok := r.Header["Cookie"]; !ok {
		return w, r
	}
	names := s.names(r)
	access, _ := readCookie(r.Header, names.access)
	refresh, _ := readCookie(r.Header, names.refresh)
	if access == "" && refresh == "" {
		return w, r
	}
	sw := &sessionWriter{ResponseWriter: w}
	st := &session{names: names, access: access, refresh: refresh, w: sw}
	return sw, r.WithContext(context.WithValue(r.Context(), sessionKey{}, st))
}

// Errors of cookie authentication; unauthorized maps them to responses.
var (
	// errSessionEnded: the session cookies can no longer be used.
	errSessionEnded = errors.New("gateway: session ended")
	// errCrossOrigin: a cookie-authenticated unsafe request from another
	// origin.
	errCrossOrigin = errors.New("gateway: cross-origin request with session cookies")
)

// authenticate is the cookie branch of Gateway.authenticate: it verifies
// the access cookie, and refreshes it when it is expired, nearly expired or
// invalid (RFC 6749 §1.5 steps G–H).
func (s *sessions) authenticate(r *http.Request, st *session) (*resource.Principal, string, error) {
	if unsafeMethod(r.Method) && !s.sameOrigin(r) {
		return nil, "", errCrossOrigin
	}
	ctx := r.Context()
	if st.access != "" {
		p, err := s.verify.Verify(ctx, st.access)
		switch {
		case err == nil && p.Expiry.Sub(s.cfg.Now()) > s.sc.RefreshBefore:
			st.authenticated = true
			return p, st.access, nil
		case err != nil && !errors.Is(err, resource.ErrInvalidToken):
			return nil, "", err // keys unavailable: the token could not be checked
		}
	}
	if st.refresh == "" {
		return nil, "", errSessionEnded
	}
	res, err := s.refreshSession(ctx, st.refresh)
	if err != nil {
		return nil, "", err
	}
	s.renewed(st, res)
	st.authenticated = true
	return res.principal, res.access, nil
}

// renewed records new tokens on the session and sets them as cookies on
// its response.
func (s *sessions) renewed(st *session, res *refreshResult) {
	st.access, st.refresh, st.refreshed = res.access, res.refresh, true
	st.w.set(s.tokenCookies(st.names, res.access, res.refresh)...)
}

// refreshResult is the outcome of one refresh grant, shared by every request
// that presented the same refresh token.
type refreshResult struct {
	principal       *resource.Principal
	access, refresh string
	until           time.Time // kept for reuse until then
	err             error     // errSessionEnded, cached; transient errors are not
}

// refreshSession exchanges a refresh token for new tokens (RFC 6749 §6).
// Concurrent calls with one token make one grant and share its result, and
// so do calls within ReuseWindow after it: the authorization server rotates
// refresh tokens, and would take a second use as a replay.
func (s *sessions) refreshSession(ctx context.Context, refresh string) (*refreshResult, error) {
	key := sha256.Sum256([]byte(refresh))
	if res := s.cachedResult(key); res != nil {
		return res, res.err
	}
	v, err, _ := s.group.Do(string(key[:]), func() (any, error) {
		if res := s.cachedResult(key); res != nil { // a flight ended just before this one began
			return res, res.err
		}
		res, err := s.refreshGrant(context.WithoutCancel(ctx), refresh)
		if err != nil && !errors.Is(err, errSessionEnded) {
			return nil, err
		}
		if res == nil {
			res = &refreshResult{err: err}
		}
		res.until = s.cfg.Now().Add(s.sc.ReuseWindow)
		if res.principal != nil && res.principal.Expiry.Before(res.until) {
			res.until = res.principal.Expiry
		}
		s.storeResult(key, res)
		return res, res.err
	})
	if err != nil {
		return nil, err
	}
	return v.(*refreshResult), nil
}

// refreshGrant makes the refresh grant. A refusal by the authorization
// server ends the session (errSessionEnded); other failures are
// errUnavailable and leave the cookies alone.
func (s *sessions) refreshGrant(ctx context.Context, refresh string) (*refreshResult, error) {
	resp, err := s.token(ctx, url.Values{"grant_type": {oauth.GrantRefreshToken}, "refresh_token": {refresh}})
	if _, refused := errors.AsType[*oauth.Error](err); refused && !errors.Is(err, errUnavailable) {
		return nil, errSessionEnded
	}
	if err != nil {
		return nil, err
	}
	p, err := s.verify.Verify(ctx, resp.AccessToken)
	if err != nil {
		return nil, fmt.Errorf("verify token from refresh grant: %w", err)
	}
	next := resp.RefreshToken
	if next == "" { // a server that does not rotate keeps the old one valid
		next = refresh
	}
	return &refreshResult{principal: p, access: resp.AccessToken, refresh: next}, nil
}

// token calls the token endpoint as the gateway's client. Protocol errors
// other than invalid_grant and invalid_request, and transport failures, are
// returned wrapping errUnavailable.
func (s *sessions) token(ctx context.Context, params url.Values) (*oauth.TokenResponse, error) {
	tokenURL, err := s.basic.tokenEndpoint(ctx)
	if err != nil {
		return nil, err
	}
	tc := oauth.TokenClient{TokenURL: tokenURL, ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, HTTPClient: s.cfg.HTTPClient}
	resp, err := tc.Token(ctx, params)
	if oe, ok := errors.AsType[*oauth.Error](err); ok {
		if oe.Code == oauth.ErrInvalidGrant || oe.Code == oauth.ErrInvalidRequest {
			return nil, oe
		}
		s.cfg.Logger.ErrorContext(ctx, "token endpoint refused the gateway", "grant_type", params.Get("grant_type"),
			"code", oe.Code, "description", oe.Description)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	return resp, nil
}

func (s *sessions) cachedResult(key [sha256.Size]byte) *refreshResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := s.results[key]
	if res == nil || !s.cfg.Now().Before(res.until) {
		return nil
	}
	return res
}

func (s *sessions) storeResult(key [sha256.Size]byte, res *refreshResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.results) >= s.sc.CacheSize {
		now := s.cfg.Now()
		for k, r := range s.results {
			if !now.Before(r.until) {
				delete(s.results, k)
			}
		}
		for k := range s.results {
			if len(s.results) < s.sc.CacheSize {
				break
			}
			delete(s.results, k)
		}
	}
	s.results[key] = res
}

// forget drops the kept refresh results that hand out refresh, so that
// after logout no request with an older cookie gets its tokens.
func (s *sessions) forget(refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.results, sha256.Sum256([]byte(refresh)))
	for k, r := range s.results {
		if r.refresh == refresh {
			delete(s.results, k)
		}
	}
}

// unauthorized answers the session failures of a request, and turns a
// browser navigation without credentials into a trip to the login form. It
// returns false for errors it leaves to Gateway.unauthorized.
func (s *sessions) unauthorized(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case errors.Is(err, errCrossOrigin):
		s.cfg.Logger.InfoContext(r.Context(), "request denied", "method", r.Method, "path", r.URL.Path,
			"reason", "cross-origin request with session cookies", "origin", r.Header.Get("Origin"),
			"sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		writeError(w, &oauth.Error{Code: oauth.ErrAccessDenied, Description: "cross-origin request refused", Status: http.StatusForbidden})
	case errors.Is(err, errSessionEnded):
		if st := sessionFrom(r.Context()); st != nil {
			st.w.set(s.clearCookies(st.names)...)
		}
		if isNavigation(r) {
			s.redirectToLogin(w, r)
			return true
		}
		w.Header().Add("WWW-Authenticate", oauth.BearerChallenge(resource.Realm, oauth.ErrInvalidToken, "the session has ended"))
		writeError(w, &oauth.Error{Code: oauth.ErrInvalidToken, Description: "the session has ended, sign in again"})
	case errors.Is(err, errNoCredentials) && isNavigation(r):
		s.redirectToLogin(w, r)
	case errors.Is(err, errNoCredentials) && r.Header.Get("Sec-Fetch-Mode") != "":
		// A script in a browser: no Basic challenge, which would make the
		// browser prompt for a password.
		w.Header().Add("WWW-Authenticate", oauth.BearerChallenge(resource.Realm, "", ""))
		writeError(w, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "credentials required", Status: http.StatusUnauthorized})
	default:
		return false
	}
	return true
}

// redirectToLogin sends a browser to the login form, to come back to the
// page it asked for.
func (s *sessions) redirectToLogin(w http.ResponseWriter, r *http.Request) {
	target := s.sc.LoginPath + "?next=" + url.QueryEscape(r.URL.RequestURI())
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// isNavigation reports whether r is a browser loading a page into a
// top-level window: Sec-Fetch-Mode and Sec-Fetch-Dest say so, or, from a
// browser that sends neither, a GET that asks for HTML.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		dest := r.Header.Get("Sec-Fetch-Dest")
		return mode == "navigate" && (dest == "" || dest == "document")
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/html") && !strings.Contains(accept, "application/json")
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// tokenCookies returns the cookies that carry a session's tokens. They are
// session cookies: they end with the browser, and the refresh token's
// lifetime is the authorization server's to enforce.
func (s *sessions) tokenCookies(n cookieNames, access, refresh string) []*http.Cookie {
	return []*http.Cookie{s.cookie(n, n.access, access, 0), s.cookie(n, n.refresh, refresh, 0)}
}

// clearCookies returns cookies that delete the session's.
func (s *sessions) clearCookies(n cookieNames) []*http.Cookie {
	return []*http.Cookie{s.cookie(n, n.access, "", -1), s.cookie(n, n.refresh, "", -1)}
}

func (s *sessions) cookie(n cookieNames, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: n.secure, SameSite: s.sc.SameSite}
}

// sessionWriter puts the session's Set-Cookie headers on the response
// whatever writes it: the upstream's answer, the proxy's error, or the
// gateway's own. The reverse proxy clears the header map after relaying a
// 1xx response, so the cookies are added again before the final status.
type sessionWriter struct {
	http.ResponseWriter
	cookies []string // Set-Cookie values
	wrote   bool
}

// set makes cookies the session's Set-Cookie headers, replacing those set
// before.
func (sw *sessionWriter) set(cookies ...*http.Cookie) {
	h := sw.ResponseWriter.Header()
	if old := sw.cookies; len(old) > 0 {
		h["Set-Cookie"] = slices.DeleteFunc(h["Set-Cookie"], func(v string) bool { return slices.Contains(old, v) })
	}
	sw.cookies = sw.cookies[:0]
	for _, c := range cookies {
		sw.cookies = append(sw.cookies, c.String())
	}
	sw.ensure()
}

func (sw *sessionWriter) ensure() {
	h := sw.ResponseWriter.Header()
	for _, v := range sw.cookies {
		if !slices.Contains(h["Set-Cookie"], v) {
			h.Add("Set-Cookie", v)
		}
	}
}

func (sw *sessionWriter) WriteHeader(code int) {
	if code >= 200 && !sw.wrote {
		sw.wrote = true
		sw.ensure()
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *sessionWriter) Write(b []byte) (int, error) {
	if !sw.wrote {
		sw.WriteHeader(http.StatusOK)
	}
	return sw.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer (Flush,
// Hijack for upgrades, deadlines).
func (sw *sessionWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// hostOnly returns the host of a host[:port].
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// isLoopbackHost reports "localhost" and loopback IP addresses.
func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func mustHost(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Hostname()
}

// hasCookie reports whether r carries a session cookie (access or refresh),
// for the auth label of metrics and the access log.
func (s *sessions) hasCookie(r *http.Request) bool {
	n := s.names(r)
	for _, name := range []string{n.access, n.refresh} {
		if _, err := r.Cookie(name); err == nil {
			return true
		}
	}
	return false
}
