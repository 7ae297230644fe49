package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
)

// loginForm loads the login form and returns the response, the form's CSRF
// token and the pre-session cookie's value.
func loginForm(t *testing.T, g http.Handler, query string) (*httptest.ResponseRecorder, string, string) {
	t.Helper()
	w := sessionRequest(g, http.MethodGet, "/login"+query, navigation, "")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /login: got %d %s, want 200", w.Code, w.Body)
	}
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(w.Body.String())
	c := setCookies(w)[hostCookies.csrf]
	if m == nil || c == nil {
		t.Fatalf("GET /login: got token %v and cookie %v, want both", m, c)
	}
	return w, m[1], c.Value
}

// postLogin submits the login form as a browser does after loading it
// (Sec-Fetch-Site none, Origin null: the page's referrer policy is
// no-referrer), with the pre-session cookie csrf and more headers.
func postLogin(g http.Handler, form url.Values, csrf string, more http.Header) *httptest.ResponseRecorder {
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"null"},
		"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"}}
	if csrf != "" {
		h.Set("Cookie", hostCookies.csrf+"="+csrf)
	}
	for k, v := range more {
		h[k] = v
	}
	return sessionRequest(g, http.MethodPost, "/login", h, form.Encode())
}

// TestLoginPage: the form is self-contained, accessible and served with
// the security headers.
func TestLoginPage(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: newRecorder(t).URL}})
	w := sessionRequest(g, http.MethodGet, "/login?next=%2Fapi%2Forders%3Fa%3D1", navigation, "")
	if w.Code != http.StatusOK {
		t.Fatalf("got %d, want 200", w.Code)
	}
	body := w.Body.String()
	h := w.Header()
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
	if style == nil {
		t.Fatal("no inline style")
	}
	sum := sha256.Sum256([]byte(style[1]))
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'",
		"frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("got CSP %q, want it to contain %q", csp, want)
		}
	}
	for name, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8", "X-Content-Type-Options": "nosniff"} {
		if got := h.Get(name); got != want {
			t.Errorf("got %s %q, want %q", name, got, want)
		}
	}
	for _, want := range []string{`<html lang="en">`, `<label for="username">`, `<label for="password">`, `id="username"`,
		`id="password"`, `autocomplete="current-password"`, `name="next" value="/api/orders?a=1"`, `<title>Sign in</title>`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://", "src="} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q, want no script and no external asset", bad)
		}
	}
	c := setCookies(w)[hostCookies.csrf]
	if c == nil || !c.HttpOnly || !c.Secure || c.Path != "/" || c.Domain != "" {
		t.Errorf("got pre-session cookie %v, want __Host-, HttpOnly, Secure, Path=/", c)
	}
	// The error of a failed login is tied to the fields.
	_, token, cookie := loginForm(t, g, "")
	w = postLogin(g, url.Values{"username": {"alice"}, "password": {"wrong"}, "csrf_token": {token}}, cookie, nil)
	body = w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, `role="alert"`) || !strings.Contains(body, `aria-describedby="login-error"`) ||
		!strings.Contains(body, `id="login-error"`) || !strings.Contains(body, `value="alice"`) {
		t.Errorf("failed login: got %d %s, want the form with an alert tied to the fields", w.Code, body)
	}
	if strings.Contains(body, "wrong") {
		t.Error("failed login: the page repeats the password")
	}
	if c := setCookies(w)[hostCookies.access]; c != nil {
		t.Error("failed login set a session cookie")
	}
}

// TestLogin: the form and JSON logins, their CSRF protection, and where the
// browser lands.
func TestLogin(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: newRecorder(t).URL}})
	alice := testUsers["alice"].password
	_, token, cookie := loginForm(t, g, "")
	_, otherToken, _ := loginForm(t, g, "")
	jsonHeader := func(kv ...string) http.Header {
		return with(http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}, kv...)
	}
	tests := []struct {
		name       string
		form       url.Values // a form post, or
		json       string     // a JSON post
		csrf       string     // the pre-session cookie
		header     http.Header
		wantStatus int
		wantError  string // JSON error code, or text on the page
		wantLogin  bool
	}{
		{name: "form", form: url.Values{"username": {"alice"}, "password": {alice}, "csrf_token": {token}, "next": {"/api/orders"}},
			csrf: cookie, wantStatus: http.StatusSeeOther, wantLogin: true},
		{name: "form_wrong_password", form: url.Values{"username": {"alice"}, "password": {"nope"}, "csrf_token": {token}},
			csrf: cookie, wantStatus: http.StatusOK, wantError: "Wrong username or password."},
		{name: "form_unknown_user", form: url.Values{"username": {"mallory"}, "password": {alice}, "csrf_token": {token}},
			csrf: cookie, wantStatus: http.StatusOK, wantError: "Wrong username or password."},
		{name: "form_empty_password", form: url.Values{"username": {"alice"}, "password": {""}, "csrf_token": {token}},
			csrf: cookie, wantStatus: http.StatusBadRequest, wantError: "Enter your username and password."},
		{name: "form_without_token", form: url.Values{"username": {"alice"}, "password": {alice}},
			csrf: cookie, wantStatus: http.StatusForbidden, wantError: "This form has expired."},
		{name: "form_without_cookie", form: url.Values{"username": {"alice"}, "password": {alice}, "csrf_token": {token}},
			wantStatus: http.StatusForbidden, wantError: "This form has expired."},
		{name: "form_token_of_another_cookie", form: url.Values{"username": {"alice"}, "password": {alice}, "csrf_token": {otherToken}},
			csrf: cookie, wantStatus: http.StatusForbidden, wantError: "This form has expired."},
		{name: "form_cross_site_with_token", form: url.Values{"username": {"alice"}, "password": {alice}, "csrf_token": {token}},
			csrf: cookie, header: with(nil, "Sec-Fetch-Site", "cross-site"), wantStatus: http.StatusForbidden, wantError: "This form has expired."},
		{name: "form_same_origin_without_token", form: url.Values{"username": {"alice"}, "password": {alice}},
			header: with(nil, "Sec-Fetch-Site", "same-origin"), wantStatus: http.StatusSeeOther, wantLogin: true},
		{name: "form_repeated_field", form: url.Values{"username": {"alice", "carol"}, "password": {alice}, "csrf_token": {token}},
			csrf: cookie, wantStatus: http.StatusBadRequest, wantError: "could not be read"},
		{name: "json", json: `{"username":"alice","password":"` + alice + `"}`, header: jsonHeader("Origin", publicURL),
			wantStatus: http.StatusNoContent, wantLogin: true},
		{name: "json_wrong_password", json: `{"username":"alice","password":"nope"}`, header: jsonHeader("Sec-Fetch-Site", "same-origin"),
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant"},
		{name: "json_cross_origin", json: `{"username":"alice","password":"` + alice + `"}`, header: jsonHeader("Origin", "https://evil.example"),
			wantStatus: http.StatusForbidden, wantError: "access_denied"},
		{name: "json_malformed", json: `{"username":`, header: jsonHeader("Sec-Fetch-Site", "same-origin"),
			wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "form_accepting_json", form: url.Values{"username": {"alice"}, "password": {alice}, "csrf_token": {token}},
			csrf: cookie, header: with(nil, "Accept", "application/json"), wantStatus: http.StatusNoContent, wantLogin: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := as.passwords.Load()
			var w *httptest.ResponseRecorder
			if tt.form != nil {
				w = postLogin(g, tt.form, tt.csrf, tt.header)
			} else {
				w = sessionRequest(g, http.MethodPost, "/login", tt.header, tt.json)
			}
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
			set := setCookies(w)
			if !tt.wantLogin {
				if set[hostCookies.access] != nil || set[hostCookies.refresh] != nil {
					t.Errorf("got Set-Cookie %q, want no session", w.Header().Values("Set-Cookie"))
				}
				if strings.HasPrefix(tt.wantError, strings.ToLower(tt.wantError[:1])) && !strings.Contains(tt.wantError, " ") {
					if got := errorCode(t, w); got != tt.wantError {
						t.Errorf("got error %q, want %q", got, tt.wantError)
					}
				} else if !strings.Contains(w.Body.String(), tt.wantError) {
					t.Errorf("got page %s, want the message %q", w.Body, tt.wantError)
				}
				if tt.wantStatus == http.StatusForbidden && as.passwords.Load() != before {
					t.Error("a refused form still made a password grant")
				}
				return
			}
			at, rt := set[hostCookies.access], set[hostCookies.refresh]
			if at == nil || rt == nil {
				t.Fatalf("got Set-Cookie %q, want both session cookies", w.Header().Values("Set-Cookie"))
			}
			checkSessionCookie(t, at, http.SameSiteLaxMode)
			checkSessionCookie(t, rt, http.SameSiteLaxMode)
			for _, v := range []string{w.Body.String(), w.Header().Get("Location")} {
				if strings.Contains(v, at.Value) || strings.Contains(v, rt.Value) {
					t.Errorf("a token appears in the body or the Location: %q", v)
				}
			}
			if tt.wantStatus == http.StatusSeeOther {
				want := "/"
				if next := tt.form.Get("next"); next != "" {
					want = next
				}
				if got := w.Header().Get("Location"); got != want {
					t.Errorf("got Location %q, want %q", got, want)
				}
			}
			// The new session works.
			w = sessionRequest(g, http.MethodGet, "/api/x", cookieHeader(at.Value, rt.Value), "")
			if w.Code != http.StatusOK {
				t.Errorf("request with the new session: got %d %s, want 200", w.Code, w.Body)
			}
		})
	}
}

// TestLoginSameSiteStrict: the SameSite setting reaches the cookies.
func TestLoginSameSiteStrict(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: newRecorder(t).URL}},
		func(c *Config) { c.Session.SameSite = http.SameSiteStrictMode })
	w := sessionRequest(g, http.MethodPost, "/login", with(nil, "Content-Type", "application/json", "Sec-Fetch-Site", "same-origin"),
		`{"username":"alice","password":"`+testUsers["alice"].password+`"}`)
	set := setCookies(w)
	if w.Code != http.StatusNoContent || set[hostCookies.access] == nil {
		t.Fatalf("got %d %q, want 204 with cookies", w.Code, w.Header().Values("Set-Cookie"))
	}
	checkSessionCookie(t, set[hostCookies.access], http.SameSiteStrictMode)
	checkSessionCookie(t, set[hostCookies.refresh], http.SameSiteStrictMode)
}

// TestLoginNext: after login the browser goes to next only when it is a
// path of this origin.
func TestLoginNext(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: newRecorder(t).URL}})
	tests := []struct{ next, want string }{
		{"/api/orders", "/api/orders"},
		{"/api/orders?x=1&y=%2F%2Fevil", "/api/orders?x=1&y=%2F%2Fevil"},
		{"/", "/"},
		{"", "/"},
		{"//evil.example", "/"},
		{"//evil.example/path", "/"},
		{"https://evil.example", "/"},
		{"http://evil.example/", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{" //evil.example", "/"},
		{"/api\\..\\x", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/login", "/"},
		{"/logout?x", "/"},
		{"/api#frag", "/"},
		{"/%2F%2Fevil.example", "/%2F%2Fevil.example"},
	}
	for _, tt := range tests {
		t.Run(url.PathEscape(tt.next), func(t *testing.T) {
			w := postLogin(g, url.Values{"username": {"alice"}, "password": {testUsers["alice"].password}, "next": {tt.next}},
				"", with(nil, "Sec-Fetch-Site", "same-origin"))
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != tt.want {
				t.Errorf("next %q: got %d to %q, want 303 to %q", tt.next, w.Code, w.Header().Get("Location"), tt.want)
			}
			// The form keeps only a safe next too.
			page := sessionRequest(g, http.MethodGet, "/login?next="+url.QueryEscape(tt.next), navigation, "")
			if m := regexp.MustCompile(`name="next" value="([^"]*)"`).FindStringSubmatch(page.Body.String()); m == nil ||
				strings.ReplaceAll(m[1], "&amp;", "&") != tt.want {
				t.Errorf("next %q: the form carries %v, want %q", tt.next, m, tt.want)
			}
		})
	}
}

// TestLogout: logout revokes the refresh token (RFC 7009) and clears the
// cookies; it is protected against cross-site requests; without a
// revocation endpoint it still clears the cookies, and logs a warning.
func TestLogout(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	up := newRecorder(t)
	g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: up.URL}})

	t.Run("form", func(t *testing.T) {
		w := sessionRequest(g, http.MethodGet, "/logout", navigation, "")
		m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(w.Body.String())
		csrf := setCookies(w)[hostCookies.csrf]
		if w.Code != http.StatusOK || m == nil || csrf == nil || w.Header().Get("Content-Security-Policy") == "" {
			t.Fatalf("GET /logout: got %d %s, want the sign-out form", w.Code, w.Body)
		}
		at, rt := as.login("alice")
		h := with(cookieHeader(at, rt, hostCookies.csrf+"="+csrf.Value), "Content-Type", "application/x-www-form-urlencoded",
			"Origin", "null", "Sec-Fetch-Mode", "navigate")
		w = sessionRequest(g, http.MethodPost, "/logout", h, url.Values{"csrf_token": {m[1]}}.Encode())
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
			t.Errorf("got %d to %q, want 303 to /login", w.Code, w.Header().Get("Location"))
		}
		checkCleared(t, w)
		if got := as.revokedTokens(); len(got) == 0 || got[len(got)-1] != rt {
			t.Errorf("revoked %q, want the session's refresh token", got)
		}
		// The refresh token no longer renews the session.
		expired := fx.mintFor(t, "alice", func(c *jose.Claims) { c.Expiry = jose.NewNumericDate(fx.clock.Now().Add(-time.Hour)) })
		if w := sessionRequest(g, http.MethodGet, "/api/x", cookieHeader(expired, rt), ""); w.Code != http.StatusUnauthorized {
			t.Errorf("after logout: got %d, want 401", w.Code)
		}
	})
	t.Run("fetch", func(t *testing.T) {
		at, rt := as.login("alice")
		w := sessionRequest(g, http.MethodPost, "/logout", with(cookieHeader(at, rt), "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors"), "")
		if w.Code != http.StatusNoContent {
			t.Errorf("got %d, want 204", w.Code)
		}
		checkCleared(t, w)
	})
	t.Run("cross_site", func(t *testing.T) {
		at, rt := as.login("alice")
		before := len(as.revokedTokens())
		w := sessionRequest(g, http.MethodPost, "/logout", with(cookieHeader(at, rt), "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"), "")
		if w.Code != http.StatusForbidden || len(as.revokedTokens()) != before || len(w.Header().Values("Set-Cookie")) != 0 {
			t.Errorf("got %d, %d revocations, Set-Cookie %q; want 403 and nothing done", w.Code, len(as.revokedTokens())-before, w.Header().Values("Set-Cookie"))
		}
	})
	t.Run("no_revocation_endpoint", func(t *testing.T) {
		as.announceRevocation = false
		var logs logBuffer
		g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: up.URL}}, func(c *Config) {
			c.Issuer, c.RevocationURL, c.Logger = as.URL, "", logs.logger()
		})
		at, rt := as.login("alice")
		before := len(as.revokedTokens())
		w := sessionRequest(g, http.MethodPost, "/logout", with(cookieHeader(at, rt), "Sec-Fetch-Site", "same-origin"), "")
		if w.Code != http.StatusSeeOther || len(as.revokedTokens()) != before {
			t.Errorf("got %d with %d revocations, want 303 and none", w.Code, len(as.revokedTokens())-before)
		}
		checkCleared(t, w)
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "revocation_endpoint") {
			t.Errorf("got logs %q, want a warning naming revocation_endpoint", logs.String())
		}
		if strings.Contains(logs.String(), rt) {
			t.Error("the log holds the refresh token")
		}
	})
	t.Run("revocation_endpoint_from_discovery", func(t *testing.T) {
		as.announceRevocation = true
		g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: up.URL}}, func(c *Config) { c.Issuer, c.RevocationURL = as.URL, "" })
		at, rt := as.login("alice")
		w := sessionRequest(g, http.MethodPost, "/logout", with(cookieHeader(at, rt), "Sec-Fetch-Site", "same-origin"), "")
		if got := as.revokedTokens(); w.Code != http.StatusSeeOther || got[len(got)-1] != rt {
			t.Errorf("got %d, revoked %q; want 303 and the refresh token revoked", w.Code, got)
		}
	})
}
