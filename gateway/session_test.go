package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
)

// navigation are the headers of a browser loading a page.
var navigation = http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"},
	"Sec-Fetch-Site": {"none"}, "Accept": {"text/html,application/xhtml+xml"}}

// TestSessionForwarding: a cookie-authenticated request goes through the
// same rules as a bearer one, and reaches the upstream with the access
// token as a bearer token and without the session cookies.
func TestSessionForwarding(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	up := newRecorder(t)
	g := fx.sessionGateway(t, as, []Route{
		{Prefix: "/admin", Upstream: up.URL, Rules: []Rule{{Roles: []string{"admin"}}}},
		{Prefix: "/api", Upstream: up.URL, Rules: []Rule{{Methods: []string{http.MethodGet}, Scopes: []string{"orders"}}}},
	})
	aliceAT, aliceRT := as.login("alice")
	carolAT, carolRT := as.login("carol")
	olgaAT, olgaRT := as.login("olga")
	tests := []struct {
		name, path string
		header     http.Header
		wantStatus int
		wantAuth   string
	}{
		{name: "alice_api", path: "/api/x", header: cookieHeader(aliceAT, aliceRT, "theme=dark", "gh_at=x"), wantStatus: http.StatusOK, wantAuth: aliceAT},
		{name: "alice_admin_denied", path: "/admin", header: cookieHeader(aliceAT, aliceRT), wantStatus: http.StatusForbidden},
		{name: "carol_admin", path: "/admin", header: cookieHeader(carolAT, carolRT, "theme=dark"), wantStatus: http.StatusOK, wantAuth: carolAT},
		{name: "olga_missing_scope", path: "/api/x", header: cookieHeader(olgaAT, olgaRT), wantStatus: http.StatusForbidden},
		{name: "bearer_wins_over_cookie", path: "/admin", header: with(cookieHeader(aliceAT, aliceRT), "Authorization", "Bearer "+carolAT),
			wantStatus: http.StatusOK, wantAuth: carolAT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(up.requests())
			w := sessionRequest(g, http.MethodGet, tt.path, tt.header, "")
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
			seen := up.requests()[before:]
			if tt.wantStatus != http.StatusOK {
				if len(seen) != 0 {
					t.Errorf("got %d requests upstream, want none", len(seen))
				}
				return
			}
			if len(seen) != 1 {
				t.Fatalf("got %d requests upstream, want 1", len(seen))
			}
			if got := seen[0].auth; got != "Bearer "+tt.wantAuth {
				t.Errorf("upstream got Authorization %q, want the session's access token", got)
			}
			if strings.Contains(strings.ToLower(seen[0].cookie), "gh_") {
				t.Errorf("upstream got Cookie %q, want the session cookies stripped", seen[0].cookie)
			}
			if strings.Contains(tt.header.Get("Cookie"), "theme=dark") && seen[0].cookie != "theme=dark" {
				t.Errorf("upstream got Cookie %q, want %q", seen[0].cookie, "theme=dark")
			}
			if len(setCookies(w)) != 0 {
				t.Errorf("got Set-Cookie %q, want none for a valid session", w.Header().Values("Set-Cookie"))
			}
		})
	}
	if n := as.refreshes.Load(); n != 0 {
		t.Errorf("got %d refresh grants, want 0 for valid access tokens", n)
	}
}

// TestSessionRefresh: an access cookie that is missing, invalid, expired or
// about to expire is renewed with the refresh cookie before forwarding, and
// the new tokens are set as cookies (RFC 6749 §1.5 G–H).
func TestSessionRefresh(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	up := newRecorder(t)
	g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: up.URL}})
	expiring := func(d time.Duration) func(*jose.Claims) {
		return func(c *jose.Claims) { c.Expiry = jose.NewNumericDate(fx.clock.Now().Add(d)) }
	}
	tests := []struct {
		name        string
		access      string
		wantRefresh bool
	}{
		{name: "valid", access: fx.mintFor(t, "alice"), wantRefresh: false},
		{name: "expires_in_11s", access: fx.mintFor(t, "alice", expiring(11*time.Second)), wantRefresh: false},
		{name: "expires_in_5s", access: fx.mintFor(t, "alice", expiring(5*time.Second)), wantRefresh: true},
		{name: "expired_within_leeway", access: fx.mintFor(t, "alice", expiring(-5*time.Second)), wantRefresh: true},
		{name: "expired", access: fx.mintFor(t, "alice", expiring(-time.Hour)), wantRefresh: true},
		{name: "garbage", access: "not.a.jwt", wantRefresh: true},
		{name: "missing", access: "", wantRefresh: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := as.newRefresh("alice")
			before := as.refreshes.Load()
			w := sessionRequest(g, http.MethodGet, "/api/x", cookieHeader(tt.access, rt), "")
			if w.Code != http.StatusOK {
				t.Fatalf("got %d %s, want 200", w.Code, w.Body)
			}
			forwarded := strings.TrimPrefix(up.requests()[len(up.requests())-1].auth, "Bearer ")
			set := setCookies(w)
			if !tt.wantRefresh {
				if as.refreshes.Load() != before || len(set) != 0 || forwarded != tt.access {
					t.Errorf("got %d grants, Set-Cookie %v, forwarded %.20q; want no refresh", as.refreshes.Load()-before, set, forwarded)
				}
				return
			}
			if n := as.refreshes.Load() - before; n != 1 {
				t.Errorf("got %d refresh grants, want 1", n)
			}
			at, rtc := set[hostCookies.access], set[hostCookies.refresh]
			if at == nil || rtc == nil {
				t.Fatalf("got Set-Cookie %q, want both session cookies", w.Header().Values("Set-Cookie"))
			}
			if at.Value == tt.access || rtc.Value == rt {
				t.Errorf("got the old tokens back, want new ones")
			}
			if forwarded != at.Value {
				t.Errorf("forwarded %.20q, want the new access token %.20q", forwarded, at.Value)
			}
			checkSessionCookie(t, at, http.SameSiteLaxMode)
			checkSessionCookie(t, rtc, http.SameSiteLaxMode)
		})
	}
}

// checkSessionCookie fails t unless c has the attributes of a session
// cookie.
func checkSessionCookie(t *testing.T, c *http.Cookie, sameSite http.SameSite) {
	t.Helper()
	if !c.HttpOnly || !c.Secure || c.Path != "/" || c.Domain != "" || c.SameSite != sameSite || !strings.HasPrefix(c.Name, "__Host-") {
		t.Errorf("cookie %s: got %q, want __Host-, HttpOnly, Secure, Path=/, no Domain, SameSite %v", c.Name, c.String(), sameSite)
	}
}

// TestSessionRefreshFails: a refused refresh ends the session: the cookies
// are cleared, an API call gets 401 and a page load goes to the login form.
// An authorization server that is down does not end it.
func TestSessionRefreshFails(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	up := newRecorder(t)
	g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: up.URL}})
	expired := fx.mintFor(t, "alice", func(c *jose.Claims) { c.Expiry = jose.NewNumericDate(fx.clock.Now().Add(-time.Hour)) })

	t.Run("api", func(t *testing.T) {
		w := sessionRequest(g, http.MethodGet, "/api/x", with(cookieHeader(expired, "unknown-refresh-token"), "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty"), "")
		if w.Code != http.StatusUnauthorized || errorCode(t, w) != "invalid_token" {
			t.Fatalf("got %d %s, want 401 invalid_token", w.Code, w.Body)
		}
		if ch := strings.Join(w.Header().Values("WWW-Authenticate"), ", "); !strings.Contains(ch, `error="invalid_token"`) || strings.Contains(ch, "Basic") {
			t.Errorf("got WWW-Authenticate %q, want a Bearer invalid_token challenge and no Basic one", ch)
		}
		checkCleared(t, w)
	})
	t.Run("navigation", func(t *testing.T) {
		w := sessionRequest(g, http.MethodGet, "/api/x?a=1&b=2", with(cookieHeader(expired, "unknown-refresh-token"), navigationPairs()...), "")
		if w.Code != http.StatusSeeOther {
			t.Fatalf("got %d %s, want 303", w.Code, w.Body)
		}
		if got, want := w.Header().Get("Location"), "/login?next="+url.QueryEscape("/api/x?a=1&b=2"); got != want {
			t.Errorf("got Location %q, want %q", got, want)
		}
		checkCleared(t, w)
	})
	t.Run("no_refresh_cookie", func(t *testing.T) {
		w := sessionRequest(g, http.MethodGet, "/api/x", cookieHeader(expired, ""), "")
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("got %d %s, want 401", w.Code, w.Body)
		}
		checkCleared(t, w)
	})
	t.Run("authorization_server_down", func(t *testing.T) {
		as.down.Store(true)
		defer as.down.Store(false)
		w := sessionRequest(g, http.MethodGet, "/api/x", cookieHeader(expired, as.newRefresh("alice")), "")
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("got %d %s, want 503", w.Code, w.Body)
		}
		if set := w.Header().Values("Set-Cookie"); len(set) != 0 {
			t.Errorf("got Set-Cookie %q, want the cookies left alone", set)
		}
	})
	if n := len(up.requests()); n != 0 {
		t.Errorf("got %d requests upstream, want none", n)
	}
}

func navigationPairs() []string {
	var kv []string
	for k, v := range navigation {
		kv = append(kv, k, v[0])
	}
	return kv
}

// checkCleared fails t unless w deletes both session cookies.
func checkCleared(t *testing.T, w interface{ Header() http.Header }) {
	t.Helper()
	cleared := map[string]bool{}
	for _, v := range w.Header().Values("Set-Cookie") {
		c, err := http.ParseSetCookie(v)
		if err == nil && c.MaxAge < 0 && c.Value == "" {
			cleared[c.Name] = true
		}
	}
	if !cleared[hostCookies.access] || !cleared[hostCookies.refresh] {
		t.Errorf("got Set-Cookie %q, want both session cookies cleared", w.Header().Values("Set-Cookie"))
	}
}

// TestSessionSingleFlight: 50 concurrent requests of one session with an
// expired access token cause one refresh grant, and all succeed with the
// same new tokens; a straggler that arrives after the refresh with the old
// cookies reuses its result; once ReuseWindow has passed, the rotated
// refresh token is the authorization server's to refuse.
func TestSessionSingleFlight(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	as.refreshDelay = 100 * time.Millisecond
	up := newRecorder(t)
	g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: up.URL}})
	expired := fx.mintFor(t, "alice", func(c *jose.Claims) { c.Expiry = jose.NewNumericDate(fx.clock.Now().Add(-time.Minute)) })
	rt := as.newRefresh("alice")
	old := cookieHeader(expired, rt)

	const n = 50
	var wg sync.WaitGroup
	results := make([]*struct {
		code          int
		access, fresh string
	}, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			w := sessionRequest(g, http.MethodGet, "/api/x", old, "")
			set := setCookies(w)
			res := &struct {
				code          int
				access, fresh string
			}{code: w.Code}
			if c := set[hostCookies.access]; c != nil {
				res.access = c.Value
			}
			if c := set[hostCookies.refresh]; c != nil {
				res.fresh = c.Value
			}
			results[i] = res
		})
	}
	close(start)
	wg.Wait()
	if got := as.refreshes.Load(); got != 1 {
		t.Errorf("got %d refresh grants at the authorization server, want 1", got)
	}
	first := results[0]
	for i, r := range results {
		if r.code != http.StatusOK || r.access == "" || r.access != first.access || r.fresh != first.fresh {
			t.Errorf("request %d: got %d with tokens %.12q/%.12q, want 200 with the shared new tokens %.12q/%.12q",
				i, r.code, r.access, r.fresh, first.access, first.fresh)
		}
	}
	if got := len(up.requests()); got != n {
		t.Errorf("got %d requests upstream, want %d", got, n)
	}

	// A straggler with the old cookies reuses the result.
	w := sessionRequest(g, http.MethodGet, "/api/x", old, "")
	if w.Code != http.StatusOK || setCookies(w)[hostCookies.access].Value != first.access {
		t.Errorf("straggler: got %d %q, want 200 with the shared tokens", w.Code, w.Header().Values("Set-Cookie"))
	}
	if got := as.refreshes.Load(); got != 1 {
		t.Errorf("straggler: got %d refresh grants, want still 1", got)
	}
	if got := as.replays.Load(); got != 0 {
		t.Errorf("got %d replays of a rotated refresh token at the authorization server, want 0", got)
	}

	// After the window, the old refresh token goes to the server, which
	// refuses it as rotated; the new one still works.
	fx.clock.Advance(11 * time.Second)
	w = sessionRequest(g, http.MethodGet, "/api/x", old, "")
	if w.Code != http.StatusUnauthorized {
		t.Errorf("old refresh token after the window: got %d, want 401", w.Code)
	}
	w = sessionRequest(g, http.MethodGet, "/api/x", cookieHeader(expired, first.fresh), "")
	if w.Code != http.StatusOK {
		t.Errorf("new refresh token: got %d %s, want 200", w.Code, w.Body)
	}
}

// TestSessionCSRF: cookie-authenticated unsafe requests must be
// same-origin; requests with Basic or Bearer credentials are not checked.
func TestSessionCSRF(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	up := newRecorder(t)
	g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: up.URL}})
	at, rt := as.login("sam")
	cookies := cookieHeader(at, rt)
	evil := "https://evil.example"
	tests := []struct {
		name, method string
		header       http.Header
		wantStatus   int
	}{
		{"cookie_post_cross_origin", http.MethodPost, with(cookies, "Origin", evil), http.StatusForbidden},
		{"cookie_post_cross_site_fetch", http.MethodPost, with(cookies, "Sec-Fetch-Site", "cross-site", "Origin", evil), http.StatusForbidden},
		{"cookie_post_same_site_sibling", http.MethodPost, with(cookies, "Sec-Fetch-Site", "same-site", "Origin", "https://other.example.test"), http.StatusForbidden},
		{"cookie_post_null_origin", http.MethodPost, with(cookies, "Origin", "null"), http.StatusForbidden},
		{"cookie_post_no_origin", http.MethodPost, cookies, http.StatusForbidden},
		{"cookie_put_other_port", http.MethodPut, with(cookies, "Origin", publicURL+":8443"), http.StatusForbidden},
		{"cookie_delete_http_scheme", http.MethodDelete, with(cookies, "Origin", "http://gw.example.test"), http.StatusForbidden},
		{"cookie_patch_cross_origin", http.MethodPatch, with(cookies, "Origin", evil), http.StatusForbidden},
		{"cookie_post_same_origin_fetch", http.MethodPost, with(cookies, "Sec-Fetch-Site", "same-origin"), http.StatusOK},
		{"cookie_post_same_origin_header", http.MethodPost, with(cookies, "Origin", publicURL), http.StatusOK},
		{"cookie_post_same_origin_default_port", http.MethodPost, with(cookies, "Origin", "HTTPS://GW.example.test:443"), http.StatusOK},
		{"cookie_get_cross_origin", http.MethodGet, with(cookies, "Origin", evil, "Sec-Fetch-Site", "cross-site"), http.StatusOK},
		{"bearer_post_cross_origin", http.MethodPost, with(nil, "Authorization", "Bearer "+at, "Origin", evil, "Sec-Fetch-Site", "cross-site"), http.StatusOK},
		{"basic_post_cross_origin", http.MethodPost, with(nil, "Authorization", basicHeader("sam", testUsers["sam"].password), "Origin", evil), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(up.requests())
			w := sessionRequest(g, tt.method, "/api/orders", tt.header, `{"item":"x"}`)
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
			reached := len(up.requests()) - before
			if tt.wantStatus == http.StatusForbidden && (reached != 0 || errorCode(t, w) != "access_denied") {
				t.Errorf("got %d requests upstream and %s, want none and access_denied", reached, w.Body)
			}
		})
	}
}

// TestSessionPublicOriginFromHost: without PublicURL, the origin is the
// request's Host, with https for TLS connections.
func TestSessionPublicOriginFromHost(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	up := newRecorder(t)
	g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: up.URL}}, func(c *Config) { c.Session.PublicURL = "" })
	at, rt := as.login("sam")
	for _, tt := range []struct {
		target, origin string
		want           int
	}{
		{"https://app.example.test/api/x", "https://app.example.test", http.StatusOK},
		{"http://app.example.test:8080/api/x", "http://app.example.test:8080", http.StatusOK},
		{"https://app.example.test/api/x", "http://app.example.test", http.StatusForbidden},
		{"https://app.example.test/api/x", "https://evil.example", http.StatusForbidden},
	} {
		r := newRequest(http.MethodPost, tt.target, cookieHeader(at, rt))
		r.Header.Set("Origin", tt.origin)
		w := serveRecorded(g, r)
		if w.Code != tt.want {
			t.Errorf("POST %s from %s: got %d, want %d", tt.target, tt.origin, w.Code, tt.want)
		}
	}
}

// TestSessionRetryAfterUpstream401 is RFC 6749 §1.5 step F: the upstream
// refuses a token the gateway thought valid; the gateway refreshes once and
// retries idempotent requests whose body it could keep.
func TestSessionRetryAfterUpstream401(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	up := newRecorder(t)
	g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: up.URL}}, func(c *Config) { c.Session.RetryBodyBytes = 16 })
	tests := []struct {
		name, method, body string
		bearer             bool
		wantRetry          bool
		wantStatus         int
	}{
		{name: "get", method: http.MethodGet, wantRetry: true, wantStatus: http.StatusOK},
		{name: "head", method: http.MethodHead, wantRetry: true, wantStatus: http.StatusOK},
		{name: "delete", method: http.MethodDelete, wantRetry: true, wantStatus: http.StatusOK},
		{name: "put_small_body", method: http.MethodPut, body: `{"n":1}`, wantRetry: true, wantStatus: http.StatusOK},
		{name: "put_large_body", method: http.MethodPut, body: `{"n":"0123456789abcdef"}`, wantStatus: http.StatusUnauthorized},
		{name: "post", method: http.MethodPost, body: `{"n":1}`, wantStatus: http.StatusUnauthorized},
		{name: "patch", method: http.MethodPatch, body: `{"n":1}`, wantStatus: http.StatusUnauthorized},
		{name: "bearer_get", method: http.MethodGet, bearer: true, wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, rt := as.login("carol")
			up.rejectToken(at)
			header := with(cookieHeader(at, rt), "Sec-Fetch-Site", "same-origin")
			if tt.bearer {
				header = with(nil, "Authorization", "Bearer "+at)
			}
			before, grants := len(up.requests()), as.refreshes.Load()
			w := sessionRequest(g, tt.method, "/api/x", header, tt.body)
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
			seen := up.requests()[before:]
			wantSeen := 1
			if tt.wantRetry {
				wantSeen = 2
			}
			if len(seen) != wantSeen {
				t.Fatalf("got %d requests upstream, want %d", len(seen), wantSeen)
			}
			set := setCookies(w)
			if tt.bearer {
				if as.refreshes.Load() != grants || len(set) != 0 {
					t.Errorf("bearer: got %d grants and Set-Cookie %v, want neither", as.refreshes.Load()-grants, set)
				}
				return
			}
			if n := as.refreshes.Load() - grants; n != 1 {
				t.Errorf("got %d refresh grants, want 1", n)
			}
			fresh := set[hostCookies.access]
			if fresh == nil || fresh.Value == at || set[hostCookies.refresh] == nil {
				t.Fatalf("got Set-Cookie %q, want renewed session cookies, also on a response that was not retried", w.Header().Values("Set-Cookie"))
			}
			for _, s := range seen {
				if s.body != tt.body && len(tt.body) <= 16 {
					t.Errorf("upstream got body %q, want %q", s.body, tt.body)
				}
			}
			if tt.wantRetry && seen[1].auth != "Bearer "+fresh.Value {
				t.Errorf("retry carried %.30q, want the new access token", seen[1].auth)
			}
		})
	}
	t.Run("retry_refused_again", func(t *testing.T) {
		// The new token is refused too: the 401 reaches the client after
		// one refresh and one retry, no loop.
		rejecting := newRecorder(t)
		rejecting.rejectAll = true
		g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: rejecting.URL}})
		at, rt := as.login("carol")
		grants := as.refreshes.Load()
		w := sessionRequest(g, http.MethodGet, "/api/x", cookieHeader(at, rt), "")
		if w.Code != http.StatusUnauthorized || as.refreshes.Load()-grants != 1 || len(rejecting.requests()) != 2 {
			t.Errorf("got %d after %d grants and %d upstream requests, want 401 after 1 and 2",
				w.Code, as.refreshes.Load()-grants, len(rejecting.requests()))
		}
	})
	t.Run("role_removed", func(t *testing.T) {
		// What was revoked was carol's admin role: the refreshed session is
		// checked against the route's rule again, and not forwarded.
		up := newRecorder(t)
		g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: up.URL, Rules: []Rule{{Roles: []string{"admin"}}}}})
		at, rt := as.login("carol")
		up.rejectToken(at)
		fx.roles.Store("carol", []string{"consumer"})
		t.Cleanup(func() { fx.roles.Delete("carol") })
		w := sessionRequest(g, http.MethodGet, "/api/x", cookieHeader(at, rt), "")
		if w.Code != http.StatusForbidden || errorCode(t, w) != "access_denied" || len(up.requests()) != 1 {
			t.Errorf("got %d %s after %d upstream requests, want 403 access_denied after 1", w.Code, w.Body, len(up.requests()))
		}
		if setCookies(w)[hostCookies.access] == nil {
			t.Errorf("got Set-Cookie %q, want the renewed session", w.Header().Values("Set-Cookie"))
		}
	})
}

// TestSessionUnauthenticated: without credentials, a page load goes to the
// login form and an API call gets 401; a call from a browser script gets no
// Basic challenge, which would make the browser prompt.
func TestSessionUnauthenticated(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	up := newRecorder(t)
	g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: up.URL}})

	w := sessionRequest(g, http.MethodGet, "/api/orders?x=1", navigation, "")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?next=%2Fapi%2Forders%3Fx%3D1" {
		t.Errorf("navigation: got %d to %q, want 303 to the login form", w.Code, w.Header().Get("Location"))
	}
	w = sessionRequest(g, http.MethodGet, "/api/orders", with(nil, "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe"), "")
	if w.Code != http.StatusUnauthorized {
		t.Errorf("frame: got %d, want 401: the login form cannot be framed", w.Code)
	}
	w = sessionRequest(g, http.MethodGet, "/api/orders", with(nil, "Accept", "text/html"), "")
	if w.Code != http.StatusSeeOther {
		t.Errorf("navigation of a browser without Sec-Fetch-*: got %d, want 303", w.Code)
	}
	w = sessionRequest(g, http.MethodGet, "/api/orders", with(nil, "Sec-Fetch-Mode", "cors", "Accept", "application/json"), "")
	if ch := strings.Join(w.Header().Values("WWW-Authenticate"), ", "); w.Code != http.StatusUnauthorized || strings.Contains(ch, "Basic") {
		t.Errorf("fetch: got %d with %q, want 401 without a Basic challenge", w.Code, ch)
	}
	w = sessionRequest(g, http.MethodGet, "/api/orders", nil, "")
	if ch := strings.Join(w.Header().Values("WWW-Authenticate"), ", "); w.Code != http.StatusUnauthorized || !strings.Contains(ch, "Basic") {
		t.Errorf("API client: got %d with %q, want 401 with a Basic challenge", w.Code, ch)
	}
}

// TestSessionConfig: session settings are checked at New.
func TestSessionConfig(t *testing.T) {
	fx := newFixture(t)
	up := "http://127.0.0.1:1"
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"defaults", func(c *Config) {}, ""},
		{"strict", func(c *Config) { c.Session.SameSite = http.SameSiteStrictMode }, ""},
		{"none", func(c *Config) { c.Session.SameSite = http.SameSiteNoneMode }, "same_site"},
		{"no_client", func(c *Config) { c.ClientID, c.ClientSecret = "", "" }, "client_id"},
		{"relative_login_path", func(c *Config) { c.Session.LoginPath = "login" }, "absolute path"},
		{"same_paths", func(c *Config) { c.Session.LoginPath, c.Session.LogoutPath = "/x", "/x" }, "must differ"},
		{"bad_public_url", func(c *Config) { c.Session.PublicURL = "https://gw.example.test/app" }, "public_url"},
		{"insecure_cookies_public", func(c *Config) {
			c.Session.InsecureDevCookies, c.Session.PublicURL = true, "https://gw.example.test"
		}, "loopback"},
		{"insecure_cookies_loopback", func(c *Config) {
			c.Session.InsecureDevCookies, c.Session.PublicURL = true, "http://127.0.0.1:8080"
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Issuer: testIssuer, Audience: []string{testAudience}, ClientID: gwClientID, ClientSecret: gwSecret,
				Verifier: fx.verifier, Routes: []Route{{Prefix: "/", Upstream: up}}, Session: SessionConfig{Enabled: true}}
			tt.mod(&cfg)
			_, err := New(cfg)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestSessionDevCookies: InsecureDevCookies gives plain-http loopback
// requests cookies without the prefix and Secure, and no other request.
func TestSessionDevCookies(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	g := fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: newRecorder(t).URL}},
		func(c *Config) { c.Session.PublicURL, c.Session.InsecureDevCookies = "", true })
	login := func(target, remote string) map[string]*http.Cookie {
		r := newRequest(http.MethodPost, target, with(nil, "Content-Type", "application/json", "Sec-Fetch-Site", "same-origin"))
		r.Body = jsonBody(map[string]string{"username": "alice", "password": testUsers["alice"].password})
		r.RemoteAddr = remote
		w := serveRecorded(g, r)
		if w.Code != http.StatusNoContent {
			t.Fatalf("login at %s from %s: got %d %s, want 204", target, remote, w.Code, w.Body)
		}
		return setCookies(w)
	}
	dev := login("http://127.0.0.1:8080/login", "127.0.0.1:50000")
	if c := dev["gh_at"]; c == nil || c.Secure || !c.HttpOnly || dev["gh_rt"] == nil {
		t.Errorf("http loopback: got %v, want gh_at and gh_rt, HttpOnly, not Secure", dev)
	}
	for _, tt := range []struct{ target, remote string }{
		{"https://127.0.0.1:8443/login", "127.0.0.1:50000"},
		{"http://gw.example.test/login", "127.0.0.1:50000"},
		{"http://127.0.0.1:8080/login", "192.0.2.7:50000"},
	} {
		set := login(tt.target, tt.remote)
		if c := set[hostCookies.access]; c == nil || !c.Secure || set["gh_at"] != nil {
			t.Errorf("%s from %s: got %v, want the __Host- cookies", tt.target, tt.remote, set)
		}
	}
}

// newRequest is an incoming request to target with header.
func newRequest(method, target string, header http.Header) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	return r
}

func serveRecorded(g http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}

func jsonBody(v any) io.ReadCloser {
	b, _ := json.Marshal(v)
	return io.NopCloser(bytes.NewReader(b))
}

// TestSessionCookiesAfterInformational: the reverse proxy clears the
// response headers after relaying a 1xx response from the upstream; the
// renewed cookies must still reach the client with the final response.
func TestSessionCookiesAfterInformational(t *testing.T) {
	fx := newFixture(t)
	as := newSessionAS(t, fx)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	gw := httptest.NewServer(fx.sessionGateway(t, as, []Route{{Prefix: "/api", Upstream: up.URL}}))
	t.Cleanup(gw.Close)
	expired := fx.mintFor(t, "alice", func(c *jose.Claims) { c.Expiry = jose.NewNumericDate(fx.clock.Now().Add(-time.Hour)) })
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+"/api/x", nil)
	req.Header = cookieHeader(expired, as.newRefresh("alice"))
	resp, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := map[string]bool{}
	for _, c := range resp.Cookies() {
		got[c.Name] = c.Value != ""
	}
	if resp.StatusCode != http.StatusOK || !got[hostCookies.access] || !got[hostCookies.refresh] {
		t.Errorf("got %d with Set-Cookie %q, want 200 with the renewed cookies", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
}
