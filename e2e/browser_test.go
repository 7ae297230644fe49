package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/devstack"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the browser test's screenshot of the login form to docs/login.png")

// chromium returns the browser to drive: $GATEHOUSE_CHROMIUM, else Debian's
// /usr/bin/chromium. The test skips where there is none.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("GATEHOUSE_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Skipf("no browser at %s (install Debian's chromium, or set GATEHOUSE_CHROMIUM): %v", path, err)
	}
	return path
}

// browser starts a headless Chromium with a fresh profile and returns its
// context; the browser stops with the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(960, 760),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser, bound to ctx
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// step runs actions with a deadline and fails t if they fail.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value runs one action with a deadline and returns its value.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// submit clicks the page's submit button and waits for the page it leads
// to.
func submit(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// cookies returns the browser's cookies for u by name, read over the
// DevTools protocol (which sees HttpOnly cookies, unlike the page).
func cookies(t *testing.T, ctx context.Context, u string) map[string]*network.Cookie {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
	if err != nil {
		t.Fatalf("network.getCookies: %v", err)
	}
	m := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		m[c.Name] = c
	}
	return m
}

// TestBrowserSession is the session client of DESIGN.md flow 3 in a real
// browser: a protected page sends it to the login form; after signing in
// it lands on the page, with the tokens in cookies no script can read; an
// expired access token is renewed on the next navigation; after logout the
// page sends it to the login form again, and the authorization server
// refuses the session's last refresh token.
func TestBrowserSession(t *testing.T) {
	ctx := browser(t)
	var gatewaySecret string
	rev := &revocationStandIn{}
	h := start(t, func(o *devstack.Options) {
		o.AccessTokenTTL = 2 * time.Second
		o.Gateway = func(c *gateway.Config) {
			gatewaySecret = c.ClientSecret
			c.Session.RefreshBefore = time.Second
			c.RevocationURL = rev.start(t)
		}
	})
	rev.setStack(h)
	alice := h.user(t, "alice")
	page := h.GatewayURL + "/api/consumers/me"

	// A protected page sends the browser to the login form.
	step(t, ctx, "open the protected page", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#username")))
	if got, want := value(t, ctx, "location", chromedp.Location()), h.GatewayURL+"/login?next="+url.QueryEscape("/api/consumers/me"); got != want {
		t.Fatalf("got location %q, want %q", got, want)
	}
	step(t, ctx, "size the window", chromedp.EmulateViewport(900, 640))
	shot := value(t, ctx, "screenshot", chromedp.FullScreenshot(100))
	saveScreenshot(t, shot)

	// Sign in and land on the page.
	step(t, ctx, "fill the form",
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), alice.Password))
	submit(t, ctx, "submit the login form")
	if got := value(t, ctx, "location", chromedp.Location()); got != page {
		t.Fatalf("after login: got location %q, want %q", got, page)
	}
	me := pageConsumer(t, ctx)
	if me.Username != "alice" {
		t.Fatalf("after login: got %+v, want alice", me)
	}
	if dc := value(t, ctx, "document.cookie", chromedp.Evaluate[string]("document.cookie")); strings.Contains(dc, "gh_") {
		t.Errorf("document.cookie is %q, want the session cookies hidden from scripts", dc)
	}
	first := cookies(t, ctx, h.GatewayURL)
	at, rt := first["__Host-gh_at"], first["__Host-gh_rt"]
	if at == nil || rt == nil {
		t.Fatalf("got cookies %v, want __Host-gh_at and __Host-gh_rt", names(first))
	}
	for _, c := range []*network.Cookie{at, rt} {
		if !c.HTTPOnly || !c.Secure || c.Path != "/" || c.SameSite != network.CookieSameSiteLax {
			t.Errorf("cookie %s: got HttpOnly %v, Secure %v, Path %q, SameSite %q; want HttpOnly, Secure, /, Lax",
				c.Name, c.HTTPOnly, c.Secure, c.Path, c.SameSite)
		}
	}
	if url := value(t, ctx, "location", chromedp.Location()); strings.Contains(url, at.Value) || strings.Contains(url, rt.Value) {
		t.Errorf("a token is in the URL %q", url)
	}

	// Once the access token has expired, the next page load still works,
	// with new cookies.
	time.Sleep(2500 * time.Millisecond)
	step(t, ctx, "reload after expiry", chromedp.Navigate(page))
	if me := pageConsumer(t, ctx); me.Username != "alice" {
		t.Fatalf("after expiry: got %+v, want alice", me)
	}
	renewed := cookies(t, ctx, h.GatewayURL)
	if c := renewed["__Host-gh_at"]; c == nil || c.Value == at.Value {
		t.Fatalf("after expiry: the access cookie did not change")
	}
	if c := renewed["__Host-gh_rt"]; c == nil || c.Value == rt.Value {
		t.Fatalf("after expiry: the refresh cookie did not change (refresh tokens rotate)")
	}
	last := renewed["__Host-gh_rt"].Value

	// Sign out with the form.
	step(t, ctx, "open the sign-out form", chromedp.Navigate(h.GatewayURL+"/logout"), chromedp.WaitVisible(chromedp.CSS(`button[type="submit"]`)))
	submit(t, ctx, "sign out")
	if got := value(t, ctx, "location", chromedp.Location()); got != h.GatewayURL+"/login" {
		t.Errorf("after logout: got location %q, want the login form", got)
	}
	if left := cookies(t, ctx, h.GatewayURL); left["__Host-gh_at"] != nil || left["__Host-gh_rt"] != nil {
		t.Errorf("after logout: got cookies %v, want no session cookies", names(left))
	}
	step(t, ctx, "open the protected page again", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#username")))
	if got := value(t, ctx, "location", chromedp.Location()); !strings.HasPrefix(got, h.GatewayURL+"/login?next=") {
		t.Errorf("after logout: got location %q, want the login form", got)
	}

	// The authorization server refuses the session's last refresh token;
	// the same call with a live one works, so the refusal is the logout's.
	if code, status := refreshAsGateway(t, h, gatewaySecret, last); status != http.StatusBadRequest || code != oauth.ErrInvalidGrant {
		t.Errorf("refresh token after logout: got %d %q, want 400 invalid_grant", status, code)
	}
	live := jsonLogin(t, h, "bob")
	if code, status := refreshAsGateway(t, h, gatewaySecret, live); status != http.StatusOK {
		t.Errorf("a live session's refresh token: got %d %q, want 200", status, code)
	}
	if rev.calls() == 0 {
		t.Error("the gateway never called the revocation endpoint")
	}
}

// pageConsumer reads the consumers service's JSON answer from the page.
func pageConsumer(t *testing.T, ctx context.Context) consumer {
	t.Helper()
	text := value(t, ctx, "page text", chromedp.Evaluate[string]("document.body.innerText"))
	var c consumer
	if err := json.Unmarshal([]byte(text), &c); err != nil {
		t.Fatalf("got page %q, want the consumer as JSON", text)
	}
	return c
}

func names(m map[string]*network.Cookie) []string {
	var n []string
	for k := range m {
		n = append(n, k)
	}
	return n
}

// saveScreenshot keeps the screenshot with the test's files, and writes it
// to docs/login.png with -update-screenshot.
func saveScreenshot(t *testing.T, png []byte) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "login.png")
	if *updateScreenshot {
		dst = filepath.Join("..", "docs", "login.png")
	}
	if err := os.WriteFile(dst, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the login form: %s", dst)
}

// refreshAsGateway presents a refresh token at the token endpoint with the
// gateway's client credentials (a refresh token is bound to its client) and
// returns the error code and status.
func refreshAsGateway(t *testing.T, h *harness, secret, refresh string) (string, int) {
	t.Helper()
	tc := oauth.TokenClient{TokenURL: h.TokenURL, ClientID: devstack.GatewayClientID, ClientSecret: secret, HTTPClient: h.client}
	_, err := tc.Token(t.Context(), url.Values{"grant_type": {oauth.GrantRefreshToken}, "refresh_token": {refresh}})
	if err == nil {
		return "", http.StatusOK
	}
	if oe, ok := errors.AsType[*oauth.Error](err); ok {
		return oe.Code, oe.HTTPStatus()
	}
	t.Fatalf("refresh: %v", err)
	return "", 0
}

// jsonLogin signs user in through the gateway's JSON login and returns the
// session's refresh token.
func jsonLogin(t *testing.T, h *harness, user string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": h.user(t, user).Password})
	r := h.call(t, http.MethodPost, "/login", "", string(body), http.Header{"Accept": {"application/json"}, "Origin": {h.GatewayURL}})
	if r.status != http.StatusNoContent {
		t.Fatalf("JSON login of %s: got %d %s, want 204", user, r.status, r.body)
	}
	for _, v := range r.header.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(v); err == nil && c.Name == "__Host-gh_rt" {
			return c.Value
		}
	}
	t.Fatalf("JSON login of %s: no refresh cookie in %q", user, r.header.Values("Set-Cookie"))
	return ""
}

// revocationStandIn is an RFC 7009 endpoint for the gateway's logout while
// the authorization server of this branch has none: when the server's
// discovery names a revocation_endpoint, requests are passed to it;
// otherwise the refresh token's family is revoked in the stack's store,
// as the server would.
type revocationStandIn struct {
	mu    sync.Mutex
	stack *harness
	n     int
}

func (s *revocationStandIn) setStack(h *harness) {
	s.mu.Lock()
	s.stack = h
	s.mu.Unlock()
}

func (s *revocationStandIn) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *revocationStandIn) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.n++
		h := s.stack
		s.mu.Unlock()
		if h == nil {
			oauth.WriteError(w, &oauth.Error{Code: oauth.ErrTemporarilyUnavailable})
			return
		}
		if endpoint := s.announced(r.Context(), h); endpoint != "" {
			u, _ := url.Parse(endpoint)
			(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.Out.URL.Path, pr.Out.Host = u.Path, ""
			}}).ServeHTTP(w, r)
			return
		}
		if id, _, ok := r.BasicAuth(); !ok || id != devstack.GatewayClientID || r.ParseForm() != nil {
			oauth.WriteError(w, &oauth.Error{Code: oauth.ErrInvalidClient})
			return
		}
		if err := s.revoke(r.Context(), h, r.PostForm.Get("token")); err != nil {
			t.Errorf("revocation stand-in: %v", err)
			oauth.WriteError(w, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// announced returns the revocation_endpoint of the stack's discovery, or "".
func (s *revocationStandIn) announced(ctx context.Context, h *harness) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.IssuerURL+"/.well-known/openid-configuration", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var meta struct {
		RevocationEndpoint string `json:"revocation_endpoint"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&meta)
	return meta.RevocationEndpoint
}

// revoke revokes the family of a refresh token in the store, as RFC 7009
// §2.1 asks of a server that revokes a refresh token.
func (s *revocationStandIn) revoke(ctx context.Context, h *harness, token string) error {
	kr, err := keyring.LoadFile(filepath.Join(h.dataDir, "master.key"), false)
	if err != nil {
		return err
	}
	rt, err := h.Store.GetRefreshToken(ctx, kr.Hasher(keyring.PurposeRefreshToken).Hash(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil // RFC 7009 §2.2: an unknown token is not an error
	}
	if err != nil {
		return err
	}
	_, err = h.Store.RevokeRefreshFamily(ctx, rt.FamilyID, time.Now())
	return err
}
