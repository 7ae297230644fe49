package e2e

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/devstack"
)

// tokenCounter is a proxy in front of the authorization server's token
// endpoint that counts refresh grants.
type tokenCounter struct {
	refreshes atomic.Int64
}

func (c *tokenCounter) start(t *testing.T, tokenURL string) string {
	u, err := url.Parse(tokenURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.URL.Path, pr.Out.Host = u.Path, ""
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("grant_type") == "refresh_token" {
			c.refreshes.Add(1)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSessionRefreshSingleFlight runs the single-flight refresh against the
// real authorization server, which rotates refresh tokens: 50 concurrent
// requests of one session whose access token has expired make one refresh
// grant, all succeed, and the session goes on with the rotated token (a
// second grant with the old token would have been a replay).
func TestSessionRefreshSingleFlight(t *testing.T) {
	t.Parallel()
	var counter tokenCounter
	h := start(t, func(o *devstack.Options) {
		o.AccessTokenTTL = 3 * time.Second // room for 50 requests under -race on a busy machine: the shared result lives until the new access token expires
		o.RefreshGrace = -1                // no grace: a replay would revoke the session
		o.Gateway = func(c *gateway.Config) {
			c.TokenURL = counter.start(t, c.TokenURL)
			c.Session.RefreshBefore = 500 * time.Millisecond
		}
	})
	access, refresh := sessionCookies(t, h, "alice")
	time.Sleep(3200 * time.Millisecond) // the access token expires

	const n = 50
	cookie := "__Host-gh_at=" + access + "; __Host-gh_rt=" + refresh
	var wg sync.WaitGroup
	statuses := make([]int, n)
	renewed := make([]string, n)
	for i := range n {
		wg.Go(func() {
			r := h.call(t, http.MethodGet, "/api/consumers/me", "", "", http.Header{"Cookie": {cookie}})
			statuses[i] = r.status
			renewed[i] = setCookie(r.header, "__Host-gh_rt")
		})
	}
	wg.Wait()
	if got := counter.refreshes.Load(); got != 1 {
		t.Errorf("got %d refresh grants at the authorization server, want 1", got)
	}
	for i := range n {
		if statuses[i] != http.StatusOK || renewed[i] == "" || renewed[i] != renewed[0] {
			t.Errorf("request %d: got %d with refresh cookie %.8q, want 200 with the shared %.8q", i, statuses[i], renewed[i], renewed[0])
		}
	}
	// The session goes on with the rotated token once the new access token
	// expires too.
	time.Sleep(3200 * time.Millisecond)
	r := h.call(t, http.MethodGet, "/api/consumers/me", "", "", http.Header{"Cookie": {"__Host-gh_rt=" + renewed[0]}})
	if r.status != http.StatusOK || counter.refreshes.Load() != 2 {
		t.Errorf("with the rotated refresh token: got %d after %d grants, want 200 after 2", r.status, counter.refreshes.Load())
	}
}

// sessionCookies signs user in with the gateway's JSON login and returns
// the session's tokens.
func sessionCookies(t *testing.T, h *harness, user string) (access, refresh string) {
	t.Helper()
	r := h.call(t, http.MethodPost, "/login", "", `{"username":"`+user+`","password":"`+h.user(t, user).Password+`"}`,
		http.Header{"Accept": {"application/json"}, "Sec-Fetch-Site": {"same-origin"}})
	if r.status != http.StatusNoContent {
		t.Fatalf("login: got %d %s, want 204", r.status, r.body)
	}
	access, refresh = setCookie(r.header, "__Host-gh_at"), setCookie(r.header, "__Host-gh_rt")
	if access == "" || refresh == "" {
		t.Fatalf("login: got Set-Cookie %q, want both session cookies", r.header.Values("Set-Cookie"))
	}
	return access, refresh
}

// setCookie returns the value a response sets for the cookie name, or "".
func setCookie(h http.Header, name string) string {
	for _, v := range h.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(v); err == nil && c.Name == name {
			return c.Value
		}
	}
	return ""
}
