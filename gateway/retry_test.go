package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// basicForwarded sends a GET with carol's Basic credentials and returns the
// token the upstream saw: the one the gateway has cached for her.
func basicForwarded(t *testing.T, g http.Handler, up *recorder, user string) string {
	t.Helper()
	w := sessionRequest(g, http.MethodGet, "/api/x", with(nil, "Authorization", basicHeader(user, testUsers[user].password)), "")
	if w.Code != http.StatusOK {
		t.Fatalf("Basic call: got %d %s, want 200", w.Code, w.Body)
	}
	seen := up.requests()
	return strings.TrimPrefix(seen[len(seen)-1].auth, "Bearer ")
}

// TestBasicRetryAfterUpstream401 is step F for Basic credentials, with
// sessions off: the upstream refuses the token the gateway cached for a
// credential (revoked, and the service learned first); the gateway drops
// it, makes a new password grant and retries an idempotent request whose
// body it could keep — once. Other requests get the upstream's 401, and the
// next request makes the grant.
func TestBasicRetryAfterUpstream401(t *testing.T) {
	fx := newFixture(t)
	up := newRecorder(t)
	g := fx.gateway(t, []Route{{Prefix: "/api", Upstream: up.URL}}, func(c *Config) { c.Session.RetryBodyBytes = 16 })
	auth := with(nil, "Authorization", basicHeader("carol", testUsers["carol"].password))
	tests := []struct {
		name, method, body string
		wantRetry          bool
		wantStatus         int
	}{
		{name: "get", method: http.MethodGet, wantRetry: true, wantStatus: http.StatusOK},
		{name: "head", method: http.MethodHead, wantRetry: true, wantStatus: http.StatusOK},
		{name: "options", method: http.MethodOptions, wantRetry: true, wantStatus: http.StatusOK},
		{name: "delete", method: http.MethodDelete, wantRetry: true, wantStatus: http.StatusOK},
		{name: "put_small_body", method: http.MethodPut, body: `{"n":1}`, wantRetry: true, wantStatus: http.StatusOK},
		{name: "put_large_body", method: http.MethodPut, body: `{"n":"0123456789abcdef"}`, wantStatus: http.StatusUnauthorized},
		{name: "post", method: http.MethodPost, body: `{"n":1}`, wantStatus: http.StatusUnauthorized},
		{name: "patch", method: http.MethodPatch, body: `{"n":1}`, wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cached := basicForwarded(t, g, up, "carol")
			up.rejectToken(cached)
			before, grants := len(up.requests()), fx.grants.Load()
			w := sessionRequest(g, tt.method, "/api/x", auth, tt.body)
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
			seen := up.requests()[before:]
			wantSeen, wantGrants := 1, int64(0)
			if tt.wantRetry {
				wantSeen, wantGrants = 2, 1
			}
			if len(seen) != wantSeen || fx.grants.Load()-grants != wantGrants {
				t.Fatalf("got %d requests upstream and %d grants, want %d and %d",
					len(seen), fx.grants.Load()-grants, wantSeen, wantGrants)
			}
			for _, s := range seen {
				if s.body != tt.body && len(tt.body) <= 16 {
					t.Errorf("upstream got body %q, want %q", s.body, tt.body)
				}
			}
			if tt.wantRetry && (seen[1].auth == "Bearer "+cached || !strings.HasPrefix(seen[1].auth, "Bearer ")) {
				t.Errorf("retry carried %.30q, want a new access token", seen[1].auth)
			}
			if !tt.wantRetry { // the refused token is gone: the next request makes the grant
				if next := basicForwarded(t, g, up, "carol"); next == cached {
					t.Errorf("the gateway forwards the refused token again")
				}
			}
			fx.clock.Advance(2 * retryGrantInterval)
		})
	}
	if got := value(t, g.metrics.requests.WithLabelValues("/api", authBasic, outcomeRetried)); got != 5 {
		t.Errorf("requests with outcome retried: got %v, want 5", got)
	}
}

// TestBasicRetryEnds: what a retry does when it cannot help.
func TestBasicRetryEnds(t *testing.T) {
	t.Run("refused_again", func(t *testing.T) {
		// The new token is refused too: the client gets the 401 after one
		// grant and one retry, and the next requests within
		// retryGrantInterval make no grant at all.
		fx := newFixture(t)
		up := newRecorder(t)
		g := fx.gateway(t, []Route{{Prefix: "/api", Upstream: up.URL}})
		basicForwarded(t, g, up, "carol")
		up.mu.Lock()
		up.rejectAll = true
		up.mu.Unlock()
		auth := with(nil, "Authorization", basicHeader("carol", testUsers["carol"].password))
		steps := []struct {
			advance              time.Duration
			wantUpstream, grants int
		}{
			{0, 2, 1},
			{0, 1, 0},
			{retryGrantInterval / 2, 1, 0},
			{retryGrantInterval, 2, 1},
		}
		for i, s := range steps {
			fx.clock.Advance(s.advance)
			before, grants := len(up.requests()), fx.grants.Load()
			w := sessionRequest(g, http.MethodGet, "/api/x", auth, "")
			if w.Code != http.StatusUnauthorized || len(up.requests())-before != s.wantUpstream || fx.grants.Load()-grants != int64(s.grants) {
				t.Errorf("request %d: got %d after %d upstream requests and %d grants, want 401 after %d and %d",
					i+1, w.Code, len(up.requests())-before, fx.grants.Load()-grants, s.wantUpstream, s.grants)
			}
		}
	})
	t.Run("refused_posts", func(t *testing.T) {
		// Requests that are not retried: the refused token is dropped and
		// the next request makes the grant; a token that replaced a
		// dropped one is not dropped again within retryGrantInterval.
		fx := newFixture(t)
		up := newRecorder(t)
		g := fx.gateway(t, []Route{{Prefix: "/api", Upstream: up.URL}})
		basicForwarded(t, g, up, "carol")
		up.mu.Lock()
		up.rejectAll = true
		up.mu.Unlock()
		auth := with(nil, "Authorization", basicHeader("carol", testUsers["carol"].password))
		for i, s := range []struct {
			advance time.Duration
			grants  int64
		}{{0, 0}, {0, 1}, {0, 0}, {retryGrantInterval / 2, 0}, {retryGrantInterval, 0}, {0, 1}} {
			fx.clock.Advance(s.advance)
			grants := fx.grants.Load()
			w := sessionRequest(g, http.MethodPost, "/api/x", auth, `{"n":1}`)
			if w.Code != http.StatusUnauthorized || fx.grants.Load()-grants != s.grants {
				t.Errorf("POST %d: got %d after %d grants, want 401 after %d", i+1, w.Code, fx.grants.Load()-grants, s.grants)
			}
		}
	})
	tests := []struct {
		name        string
		user        string
		breakGrant  func(fx *fixture)
		rules       []Rule
		wantStatus  int
		wantCode    string
		wantRetried bool
	}{
		{name: "password_changed", user: "sam", breakGrant: func(fx *fixture) { fx.refused.Store("sam", true) },
			wantStatus: http.StatusUnauthorized, wantCode: "invalid_grant"},
		{name: "token_endpoint_down", user: "alice", breakGrant: func(fx *fixture) { fx.tokenDown.Store(true) },
			wantStatus: http.StatusServiceUnavailable, wantCode: "temporarily_unavailable"},
		{name: "role_removed", user: "carol", rules: []Rule{{Roles: []string{"admin"}}},
			breakGrant: func(fx *fixture) { fx.roles.Store("carol", []string{"consumer"}) },
			wantStatus: http.StatusForbidden, wantCode: "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			up := newRecorder(t)
			g := fx.gateway(t, []Route{{Prefix: "/api", Upstream: up.URL, Rules: tt.rules}})
			up.rejectToken(basicForwarded(t, g, up, tt.user))
			tt.breakGrant(fx)
			before := len(up.requests())
			w := sessionRequest(g, http.MethodGet, "/api/x", with(nil, "Authorization", basicHeader(tt.user, testUsers[tt.user].password)), "")
			if w.Code != tt.wantStatus || errorCode(t, w) != tt.wantCode {
				t.Errorf("got %d %s, want %d %s", w.Code, w.Body, tt.wantStatus, tt.wantCode)
			}
			if n := len(up.requests()) - before; n != 1 {
				t.Errorf("got %d requests upstream, want 1: no retry", n)
			}
		})
	}
	t.Run("bearer_untouched", func(t *testing.T) {
		fx := newFixture(t)
		up := newRecorder(t)
		g := fx.gateway(t, []Route{{Prefix: "/api", Upstream: up.URL}})
		token := fx.mintFor(t, "carol")
		up.rejectToken(token)
		w := sessionRequest(g, http.MethodGet, "/api/x", with(nil, "Authorization", "Bearer "+token), "")
		if w.Code != http.StatusUnauthorized || len(up.requests()) != 1 || fx.grants.Load() != 0 {
			t.Errorf("got %d after %d upstream requests and %d grants, want 401 after 1 and 0",
				w.Code, len(up.requests()), fx.grants.Load())
		}
	})
}
