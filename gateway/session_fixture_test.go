package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// publicURL is the origin of the gateway in the session tests.
const publicURL = "https://gw.example.test"

// sessionAS is a fake authorization server for sessions: password and
// refresh grants with strict rotation (a refresh token works once, and a
// second use is counted as a replay), RFC 7009 revocation and discovery.
type sessionAS struct {
	fx  *fixture
	URL string
	// ttl of the access tokens it issues; if zero, 5m.
	ttl time.Duration
	// refreshDelay holds each refresh grant, so that concurrent requests
	// pile up behind the first.
	refreshDelay time.Duration
	// announceRevocation puts revocation_endpoint in discovery.
	announceRevocation bool

	passwords, refreshes, replays atomic.Int64
	down                          atomic.Bool

	mu      sync.Mutex
	tokens  map[string]*asRefresh // by refresh token
	revoked []string
}

type asRefresh struct {
	user    string
	used    bool
	revoked bool
}

func newSessionAS(tb testing.TB, fx *fixture) *sessionAS {
	tb.Helper()
	as := &sessionAS{fx: fx, tokens: map[string]*asRefresh{}, announceRevocation: true}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", as.serveToken)
	mux.HandleFunc("POST /revoke", as.serveRevoke)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		meta := map[string]string{"issuer": as.URL, "token_endpoint": as.URL + "/token"}
		if as.announceRevocation {
			meta["revocation_endpoint"] = as.URL + "/revoke"
		}
		oauth.WriteJSON(w, http.StatusOK, meta)
	})
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	as.URL = srv.URL
	return as
}

func (as *sessionAS) serveToken(w http.ResponseWriter, r *http.Request) {
	if as.down.Load() {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	if id, secret, ok := r.BasicAuth(); !ok || id != gwClientID || secret != gwSecret {
		oauth.WriteError(w, &oauth.Error{Code: oauth.ErrInvalidClient})
		return
	}
	if r.ParseForm() != nil {
		oauth.WriteError(w, &oauth.Error{Code: oauth.ErrInvalidRequest})
		return
	}
	invalid := oauth.Errorf(oauth.ErrInvalidGrant, "invalid grant")
	var user string
	switch r.PostForm.Get("grant_type") {
	case oauth.GrantPassword:
		as.passwords.Add(1)
		user = r.PostForm.Get("username")
		if u, ok := testUsers[user]; !ok || u.password != r.PostForm.Get("password") {
			oauth.WriteError(w, invalid)
			return
		}
	case oauth.GrantRefreshToken:
		as.refreshes.Add(1)
		time.Sleep(as.refreshDelay)
		as.mu.Lock()
		t := as.tokens[r.PostForm.Get("refresh_token")]
		if t != nil && t.used {
			as.replays.Add(1)
		}
		ok := t != nil && !t.used && !t.revoked
		if ok {
			t.used = true
			user = t.user
		}
		as.mu.Unlock()
		if !ok {
			oauth.WriteError(w, invalid)
			return
		}
	default:
		oauth.WriteError(w, &oauth.Error{Code: oauth.ErrUnsupportedGrantType})
		return
	}
	oauth.WriteJSON(w, http.StatusOK, oauth.TokenResponse{AccessToken: as.mint(user), TokenType: "Bearer",
		ExpiresIn: int64(as.accessTTL() / time.Second), RefreshToken: as.newRefresh(user)})
}

func (as *sessionAS) accessTTL() time.Duration {
	if as.ttl == 0 {
		return 5 * time.Minute
	}
	return as.ttl
}

// mint signs an access token for user that expires after the server's TTL.
func (as *sessionAS) mint(user string) string {
	c := as.fx.claims(user)
	c.Expiry = jose.NewNumericDate(as.fx.clock.Now().Add(as.accessTTL()))
	raw, err := jose.Sign(as.fx.key, jose.TypeAccessToken, c)
	if err != nil {
		panic(err) // a fresh ES256 key signs
	}
	return raw
}

// newRefresh issues a refresh token for user.
func (as *sessionAS) newRefresh(user string) string {
	rt := rand.Text()
	as.mu.Lock()
	as.tokens[rt] = &asRefresh{user: user}
	as.mu.Unlock()
	return rt
}

func (as *sessionAS) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if id, secret, ok := r.BasicAuth(); !ok || id != gwClientID || secret != gwSecret {
		oauth.WriteError(w, &oauth.Error{Code: oauth.ErrInvalidClient})
		return
	}
	r.ParseForm()
	token := r.PostForm.Get("token")
	as.mu.Lock()
	as.revoked = append(as.revoked, token)
	if t := as.tokens[token]; t != nil {
		t.revoked = true
	}
	as.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (as *sessionAS) revokedTokens() []string {
	as.mu.Lock()
	defer as.mu.Unlock()
	return append([]string(nil), as.revoked...)
}

// sessionGateway is a gateway with sessions on, whose token and revocation
// endpoints are as's.
func (fx *fixture) sessionGateway(tb testing.TB, as *sessionAS, routes []Route, mod ...func(*Config)) *Gateway {
	tb.Helper()
	return fx.gateway(tb, routes, append([]func(*Config){func(c *Config) {
		c.TokenURL = as.URL + "/token"
		c.RevocationURL = as.URL + "/revoke"
		c.Session = SessionConfig{Enabled: true, PublicURL: publicURL}
	}}, mod...)...)
}

// login returns a fresh session of user at as: an access and a refresh
// token.
func (as *sessionAS) login(user string) (access, refresh string) {
	return as.mint(user), as.newRefresh(user)
}

// cookieHeader is a request header carrying the session cookies (empty
// values are left out) and extra cookies.
func cookieHeader(access, refresh string, extra ...string) http.Header {
	var pairs []string
	if access != "" {
		pairs = append(pairs, hostCookies.access+"="+access)
	}
	if refresh != "" {
		pairs = append(pairs, hostCookies.refresh+"="+refresh)
	}
	return http.Header{"Cookie": {strings.Join(append(pairs, extra...), "; ")}}
}

// with returns h with the headers of more added.
func with(h http.Header, more ...string) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	for i := 0; i+1 < len(more); i += 2 {
		h.Set(more[i], more[i+1])
	}
	return h
}

// sessionRequest sends one request to g at publicURL.
func sessionRequest(g http.Handler, method, path string, header http.Header, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, publicURL+path, rd)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}

// setCookies returns the cookies a response sets, by name.
func setCookies(w *httptest.ResponseRecorder) map[string]*http.Cookie {
	m := map[string]*http.Cookie{}
	for _, c := range w.Result().Cookies() {
		m[c.Name] = c
	}
	return m
}

// logBuffer is a logger whose output a test can read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// recorder is an upstream that records the method, Authorization, cookies
// and body of each request, and answers 401 invalid_token to the tokens in
// reject.
type recorder struct {
	URL    string
	mu     sync.Mutex
	seen   []seenRequest
	reject map[string]bool
	// rejectAll refuses every token; set it before the first request.
	rejectAll bool
}

type seenRequest struct {
	method, auth, cookie, body string
}

func newRecorder(tb testing.TB) *recorder {
	tb.Helper()
	rec := &recorder{reject: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		auth := r.Header.Get("Authorization")
		rec.mu.Lock()
		rec.seen = append(rec.seen, seenRequest{method: r.Method, auth: auth, cookie: r.Header.Get("Cookie"), body: string(body)})
		rejected := rec.rejectAll || rec.reject[strings.TrimPrefix(auth, "Bearer ")]
		rec.mu.Unlock()
		if rejected {
			w.Header().Set("WWW-Authenticate", `Bearer realm="svc", error="invalid_token", error_description="revoked"`)
			oauth.WriteError(w, &oauth.Error{Code: oauth.ErrInvalidToken})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"auth": auth, "body": string(body)})
	}))
	tb.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

func (rec *recorder) requests() []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seenRequest(nil), rec.seen...)
}

func (rec *recorder) rejectToken(token string) {
	rec.mu.Lock()
	rec.reject[token] = true
	rec.mu.Unlock()
}
